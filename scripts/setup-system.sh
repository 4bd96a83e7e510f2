#!/usr/bin/env bash
# Installs and starts what sandstack's demo and tests need on a Debian machine, and does nothing
# where a part already exists:
#   1. a Docker engine (apt package docker.io) and start dockerd if `docker info` does not answer;
#   2. Docker Compose (v2 plugin if present, else v1 `docker-compose` from apt);
#   3. the base image debian:bookworm-slim (pulled if a registry answers, else built offline with
#      debootstrap from Debian's packages and imported);
#   4. only with --with-chromium: Chromium at /usr/bin/chromium (apt package chromium), which the
#      report browser test (test/integration/report-browser.test.ts) drives through playwright-core.
# Every step prints what it is doing on stderr. Needs root for installs (or the parts already present).
set -euo pipefail

WITH_CHROMIUM=0
for arg in "$@"; do
  case "$arg" in
    --with-chromium) WITH_CHROMIUM=1 ;;
    *) printf 'setup-system: ignoring unknown option %s (known: --with-chromium)\n' "$arg" >&2 ;;
  esac
done

log() { printf 'setup-system: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else log "need root for: $*"; exit 3; fi; }

APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get is not available; install manually: $*"; exit 3
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then log "apt-get update"; as_root apt-get update -qq >&2; APT_UPDATED=1; fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# 1. Docker engine
if docker info >/dev/null 2>&1; then
  log "Docker engine: already running"
else
  if ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
      log "starting docker via systemctl"; as_root systemctl start docker || true
    fi
  fi
  if ! docker info >/dev/null 2>&1; then
    logfile="${SANDSTACK_DOCKERD_LOG:-/var/log/sandstack-dockerd.log}"
    log "starting dockerd in the background (log: $logfile)"
    as_root sh -c "nohup dockerd > '$logfile' 2>&1 &"
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not answer within 30 s; see its log"; exit 3; }
  log "Docker engine: running ($(docker version --format '{{.Server.Version}}'))"
fi

# 2. Compose
if docker compose version >/dev/null 2>&1; then
  log "Compose: v2 plugin present ($(docker compose version --short))"
elif command -v docker-compose >/dev/null 2>&1; then
  log "Compose: v1 present ($(docker-compose version --short))"
else
  apt_install docker-compose
  log "Compose: installed v1 ($(docker-compose version --short))"
fi

# 3. Base image
BASE="debian:bookworm-slim"
if docker image inspect "$BASE" >/dev/null 2>&1; then
  log "base image $BASE: present"
else
  log "base image $BASE: trying docker pull"
  if timeout 60 docker pull "$BASE" >/dev/null 2>&1; then
    log "base image $BASE: pulled"
  else
    log "base image $BASE: no registry reachable, building it offline with debootstrap (~30 s)"
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    root=$(mktemp -d /tmp/sandstack-rootfs.XXXXXX)
    trap 'as_root rm -rf "$root"' EXIT
    as_root debootstrap --variant=minbase bookworm "$root" >/dev/null
    as_root tar -C "$root" -c . | docker import - "$BASE" >/dev/null
    log "base image $BASE: built"
  fi
fi

# 4. Chromium (only with --with-chromium)
if [ "$WITH_CHROMIUM" -eq 1 ]; then
  CHROMIUM=/usr/bin/chromium
  if [ -x "$CHROMIUM" ]; then
    log "Chromium: present ($("$CHROMIUM" --version 2>/dev/null | head -n 1))"
  else
    apt_install chromium
    [ -x "$CHROMIUM" ] || { log "Chromium: the apt package did not provide $CHROMIUM"; exit 3; }
    log "Chromium: installed ($("$CHROMIUM" --version 2>/dev/null | head -n 1))"
  fi
fi
log "ready"
