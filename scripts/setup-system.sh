#!/usr/bin/env bash
# Installs and starts what sandstack's demo and tests need on a Debian machine, and does nothing
# where a part already exists. The target is Compose v2 on a current Docker engine:
#   1. Docker engine + Compose v2. When both exist, nothing is installed. Otherwise:
#      - on Debian 12 (bookworm), whose own packages are engine 20.10 and Compose v1 only, the
#        packages docker.io (engine 26), docker-compose (Compose 2.26: the `docker compose` plugin in
#        /usr/libexec/docker/cli-plugins, /usr/bin/docker-compose pointing at it) and docker-buildx come
#        from Debian 13 (trixie), and nothing else does: an extra apt source
#          /etc/apt/sources.list.d/sandstack-trixie.sources   (trixie main, the system's Debian mirror)
#        and an apt pin
#          /etc/apt/preferences.d/sandstack-trixie            (priority 1 for all of trixie, so nothing
#                                                             comes from it unasked, never an upgrade;
#                                                             990 for docker.io docker-cli docker-compose
#                                                             docker-buildx)
#        Their dependencies (containerd, runc, tini, iptables, libc6) come from bookworm. docker-cli (the
#        `docker` client, a separate package in trixie) is added only when no other `docker` client
#        exists. An installed bookworm engine 20.10 or Compose v1 is upgraded the same way;
#      - on Debian 13 or later: the same packages from the system's own sources;
#      - elsewhere: docker.io and docker-compose from the system's sources, as they come.
#   2. dockerd, started when `docker info` does not answer (systemctl if a service manager runs,
#      else in the background, log in /var/log/sandstack-dockerd.log);
#   3. only with --with-compose-v1: Compose v1 1.29.2 (Debian bookworm's package) beside v2, for the
#      test leg that runs sandstack with v1: unpacked with dpkg-deb -x into /opt/sandstack/compose-v1
#      (the package itself is not installed: it would replace v2's docker-compose), its Python
#      dependencies installed from bookworm with apt, run through /opt/sandstack/bin/docker-compose-v1
#      (select it with SANDSTACK_COMPOSE=/opt/sandstack/bin/docker-compose-v1);
#   4. the base image debian:bookworm-slim (pulled if a registry answers, else built offline with
#      debootstrap from Debian's packages and imported);
#   5. only with --with-chromium: Chromium at /usr/bin/chromium (apt package chromium), which the
#      report browser test (test/integration/report-browser.test.ts) drives through playwright-core;
#   6. only with --with-ssh: openssh-server and rsync (and the ssh client, iproute2, nsenter when missing) for
#      the remote-engine tests' SSH test hosts; the system's own sshd is not started.
# --dry-run changes nothing: it prints what it would do, and asks apt (`apt-get -s`) what it would
# install. Every step prints what it is doing on stderr. Needs root for installs (or the parts
# already present). SANDSTACK_SETUP_APT_OPTS adds options to every apt-get call (for tests of this
# script, e.g. `-o Dir::State::status=<a dpkg status file>` together with --dry-run).
#
# Undo (as root):
#   rm -f /etc/apt/sources.list.d/sandstack-trixie.sources /etc/apt/preferences.d/sandstack-trixie
#   apt-get update
#   apt-get install --allow-downgrades docker.io/bookworm docker-compose/bookworm docker-buildx- docker-cli-
#       # back to Debian 12's engine 20.10 and Compose v1; or remove them all:
#       # apt-get purge docker.io docker-cli docker-compose docker-buildx
#   rm -rf /opt/sandstack                  # Compose v1 beside v2 (--with-compose-v1)
set -euo pipefail

WITH_CHROMIUM=0
WITH_SSH=0
WITH_V1=0
DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --with-chromium) WITH_CHROMIUM=1 ;;
    --with-ssh) WITH_SSH=1 ;;
    --with-compose-v1) WITH_V1=1 ;;
    --dry-run) DRY_RUN=1 ;;
    *) printf 'setup-system: ignoring unknown option %s (known: --with-chromium, --with-compose-v1, --with-ssh, --dry-run)\n' "$arg" >&2 ;;
  esac
done

TRIXIE_SOURCES=/etc/apt/sources.list.d/sandstack-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/sandstack-trixie
V1_PREFIX=${SANDSTACK_V1_PREFIX:-/opt/sandstack}   # another prefix only for tests of this script
V1_ROOT=$V1_PREFIX/compose-v1
V1_BIN=$V1_PREFIX/bin/docker-compose-v1
# shellcheck disable=SC2206
APT_OPTS=(${SANDSTACK_SETUP_APT_OPTS:-})

log() { printf 'setup-system: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else log "need root for: $*"; exit 3; fi; }
# Runs a command that changes the machine, or only shows it with --dry-run.
change() { if [ "$DRY_RUN" -eq 1 ]; then log "dry run, would run: $*"; else as_root "$@"; fi; }

need_apt() {
  command -v apt-get >/dev/null 2>&1 || { log "apt-get is not available; install manually: $*"; exit 3; }
}
APT_UPDATED=0
apt_update() {
  need_apt "$@"
  if [ "$DRY_RUN" -eq 1 ]; then log "dry run, would run: apt-get update (using the package lists as they are)"; APT_UPDATED=1; return; fi
  log "apt-get update"
  as_root apt-get "${APT_OPTS[@]}" update -qq >&2 || { log "apt-get update failed (see above)"; exit 3; }
  APT_UPDATED=1
}
# apt_install [--no-install-recommends] PACKAGE...
apt_install() {
  local opts=()
  if [ "${1:-}" = --no-install-recommends ]; then opts+=("$1"); shift; fi
  need_apt "$@"
  [ "$APT_UPDATED" -eq 1 ] || apt_update
  if [ "$DRY_RUN" -eq 1 ]; then
    log "dry run, apt-get would install: $*"
    apt-get "${APT_OPTS[@]}" install -s -y "${opts[@]}" "$@" 2>&1 | grep -E '^(Inst|Remv|E:)' | sed 's/^/setup-system:   /' >&2 || true
    return
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y -qq "${opts[@]}" "$@" >&2
}

# --- what is there -------------------------------------------------------------------------------
dockerd_path() { command -v dockerd 2>/dev/null || { [ -x /usr/sbin/dockerd ] && echo /usr/sbin/dockerd; } || true; }
# The engine's version from its binary (`Docker version 26.1.5+dfsg1, build ...`), empty when absent.
engine_version() {
  local d; d=$(dockerd_path)
  [ -n "$d" ] || return 0
  "$d" --version 2>/dev/null | sed -n 's/^Docker version \([^,]*\),.*/\1/p'
}
# Compose v2's version (`docker compose`, or a v2 `docker-compose`), empty when there is none.
compose_v2_version() {
  local v
  if v=$(docker compose version --short 2>/dev/null) && [ -n "$v" ] && [[ ${v#v} != 1.* ]]; then echo "${v#v}"; return; fi
  if v=$(docker-compose version --short 2>/dev/null) && [[ ${v#v} == [2-9].* ]]; then echo "${v#v}"; return; fi
  return 0
}
compose_v1_version() {
  local v
  if v=$(docker-compose version --short 2>/dev/null) && [[ ${v#v} == 1.* ]]; then echo "$v"; fi
  return 0
}
pkg_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
# A `docker` client that does not come from the docker.io package (trixie's docker.io no longer
# contains one, so replacing bookworm's docker.io would take the client away).
other_docker_cli() {
  local p real owner
  while IFS= read -r p; do
    [ -n "$p" ] || continue
    real=$(readlink -f "$p")
    owner=$(dpkg-query -S "$real" 2>/dev/null | cut -d: -f1 || true)
    [ "$owner" = "docker.io" ] || return 0
  done < <(type -aP docker 2>/dev/null | awk '!seen[$0]++')
  return 1
}
# The URI of the system's Debian bookworm source (deb822 or one-line format), else deb.debian.org.
debian_mirror() {
  local f line uris suites
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] && [ "$f" != "$TRIXIE_SOURCES" ] || continue
    uris=""; suites=""
    while IFS= read -r line || [ -n "$line" ]; do
      case "$line" in
        URIs:*) uris=${line#URIs:} ;;
        Suites:*) suites=${line#Suites:} ;;
        "")
          if [[ " $suites " == *" bookworm "* ]] && [ -n "${uris// /}" ]; then set -- $uris; echo "$1"; return; fi
          uris=""; suites="" ;;
      esac
    done < "$f"
    if [[ " $suites " == *" bookworm "* ]] && [ -n "${uris// /}" ]; then set -- $uris; echo "$1"; return; fi
  done
  line=$(grep -hE '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+bookworm[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1 || true)
  if [ -n "$line" ]; then
    line=$(sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' <<<"$line")
    echo "${line%%[[:space:]]*}"
    return
  fi
  echo http://deb.debian.org/debian
}
# Writes a root-owned file when its content differs (shows it with --dry-run).
write_file() {
  local file=$1 content=$2
  if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then log "$file: already as needed"; return; fi
  if [ "$DRY_RUN" -eq 1 ]; then log "dry run, would write $file:"; sed 's/^/setup-system:   | /' <<<"$content" >&2; return; fi
  log "writing $file"
  printf '%s\n' "$content" | as_root tee "$file" >/dev/null
}
candidate() { apt-cache "${APT_OPTS[@]}" policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }'; }

# --- 1. Docker engine and Compose v2 ------------------------------------------------------------
ENGINE=$(engine_version)
V2=$(compose_v2_version)
if [ -n "$ENGINE" ] && [ -n "$V2" ]; then
  log "Docker engine $ENGINE and Compose v2 $V2: present, installing nothing"
else
  V1=$(compose_v1_version)
  why=()
  if [ -z "$ENGINE" ]; then why+=("no Docker engine"); else why+=("engine $ENGINE"); fi
  [ -z "$V1" ] || why+=("Compose v1 $V1 present")
  why+=("no Compose v2")
  codename=""; distro=""
  if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}"); distro=$(. /etc/os-release && echo "${ID:-}")
  fi
  # The engine package is only replaced when it is Debian's docker.io (or absent): another engine
  # (docker-ce from Docker's repository) stays, and only Compose v2 is added to it.
  pkgs=()
  if [ -z "$ENGINE" ] || pkg_installed docker.io; then pkgs+=(docker.io); fi
  [ -n "$V2" ] || pkgs+=(docker-compose)
  docker buildx version >/dev/null 2>&1 || pkgs+=(docker-buildx)
  if [ "$distro" = debian ] && [ "$codename" = bookworm ]; then
    [[ " ${pkgs[*]} " != *" docker.io "* ]] || other_docker_cli || pkgs+=(docker-cli)
    log "${why[*]/%/;} taking Docker from Debian 13 (trixie)"
    mirror=$(debian_mirror)
    write_file "$TRIXIE_SOURCES" "# Added by sandstack's scripts/setup-system.sh: Debian 13 for docker.io, docker-cli, docker-compose and
# docker-buildx only (see $TRIXIE_PIN). Undo: see the header of scripts/setup-system.sh.
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    write_file "$TRIXIE_PIN" "# Added by sandstack's scripts/setup-system.sh: nothing from trixie unless named below.
Package: *
Pin: release n=trixie
Pin-Priority: 1

Package: docker.io docker-cli docker-compose docker-buildx
Pin: release n=trixie
Pin-Priority: 990"
    apt_update
    engine_c=$(candidate docker.io); compose_c=$(candidate docker-compose)
    log "installing ${pkgs[*]} from Debian trixie (pinned, nothing else from trixie): engine ${engine_c%%+*}, Compose v2 ${compose_c%%-*}"
    apt_install --no-install-recommends "${pkgs[@]}"
  else
    # Debian 13 and later package Compose v2 as docker-compose; other systems get what they have.
    log "${why[*]/%/;} installing ${pkgs[*]} from the system's own apt sources (${distro:-unknown} ${codename:-})"
    apt_install --no-install-recommends "${pkgs[@]}"
  fi
  if [ "$DRY_RUN" -eq 0 ]; then
    for p in docker.io docker-cli docker-compose docker-buildx; do pkg_installed "$p" && log "  $p $(pkg_version "$p")"; done
    ENGINE=$(engine_version); V2=$(compose_v2_version)
    [ -n "$ENGINE" ] || { log "no Docker engine after the install"; exit 3; }
    if [ -n "$V2" ]; then log "Docker engine $ENGINE, Compose v2 $V2: installed"
    else log "Compose v2 is still missing (Compose v1: $(compose_v1_version)); sandstack will use v1"; fi
  fi
fi

# --- 2. Running engine ---------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  running=$(docker version --format '{{.Server.Version}}' 2>/dev/null || true)
  log "Docker engine: already running ($running)"
  if [ -n "$ENGINE" ] && [ -n "$running" ] && [ "$running" != "$ENGINE" ]; then
    log "notice: the running dockerd is $running, the installed one $ENGINE; restart dockerd to run $ENGINE (not done here: it would stop every container)"
  fi
elif [ "$DRY_RUN" -eq 1 ]; then
  log "dry run, would start dockerd (systemctl, else in the background)"
else
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    log "starting docker via systemctl"; as_root systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    logfile="${SANDSTACK_DOCKERD_LOG:-/var/log/sandstack-dockerd.log}"
    log "starting dockerd in the background (log: $logfile)"
    as_root sh -c "nohup '$(dockerd_path)' > '$logfile' 2>&1 &"
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not answer within 30 s; see its log"; exit 3; }
  log "Docker engine: running ($(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})'))"
fi
if [ "$DRY_RUN" -eq 0 ]; then
  if v=$(compose_v2_version) && [ -n "$v" ]; then log "Compose: v2 $v (sandstack uses it)"
  elif v=$(compose_v1_version) && [ -n "$v" ]; then log "Compose: only v1 $v"
  else log "Compose: none found"; exit 3; fi
fi

# --- 3. Compose v1 beside v2 (only with --with-compose-v1) ----------------------------------------
if [ "$WITH_V1" -eq 1 ]; then
  if [ -x "$V1_BIN" ] && v=$("$V1_BIN" version --short 2>/dev/null) && [[ $v == 1.* ]]; then
    log "Compose v1 $v: present beside v2 at $V1_BIN (extracted in $V1_ROOT)"
  else
    need_apt docker-compose
    [ "$APT_UPDATED" -eq 1 ] || apt_update
    # Debian 12's docker-compose, whatever its revision (1.29.2-3 when this was written).
    ver=$(apt-cache "${APT_OPTS[@]}" madison docker-compose 2>/dev/null | awk -F'|' '{ gsub(/ /, "", $2) } $2 ~ /^1\./ { print $2; exit }')
    [ -n "$ver" ] || { log "no Compose v1 package (docker-compose 1.x, Debian bookworm) in the apt sources"; exit 3; }
    log "Compose v1: extracting docker-compose $ver (Debian bookworm) into $V1_ROOT, beside v2"
    if [ "$DRY_RUN" -eq 1 ]; then
      log "dry run, would run: apt-get download docker-compose=$ver; install its Python dependencies; dpkg-deb -x into $V1_ROOT; write $V1_BIN"
    else
      dl=$(mktemp -d /tmp/sandstack-compose-v1.XXXXXX)
      chmod 755 "$dl"
      (cd "$dl" && apt-get "${APT_OPTS[@]}" download -qq "docker-compose=$ver" 2>&1 | grep -v 'unsandboxed' >&2 || true)
      deb=$(ls "$dl"/docker-compose_*.deb 2>/dev/null | head -n 1)
      [ -n "$deb" ] || { log "apt-get download docker-compose=$ver failed"; exit 3; }
      # Its Depends, one package per group: an alternative already installed, else the first.
      deps=()
      IFS=',' read -r -a groups <<<"$(dpkg-deb -f "$deb" Depends)"
      for g in "${groups[@]}"; do
        chosen=""; first=""
        IFS='|' read -r -a alts <<<"$g"
        for a in "${alts[@]}"; do
          name=$(sed -E 's/\(.*\)//; s/:any//; s/[[:space:]]//g' <<<"$a")
          [ -n "$first" ] || first=$name
          if pkg_installed "$name"; then chosen=installed; break; fi
        done
        [ -n "$chosen" ] || deps+=("$first")
      done
      if [ "${#deps[@]}" -gt 0 ]; then apt_install --no-install-recommends "${deps[@]}"; else log "Compose v1: its Python dependencies are installed"; fi
      as_root rm -rf "$V1_ROOT"
      as_root mkdir -p "$V1_ROOT" "$(dirname "$V1_BIN")"
      as_root dpkg-deb -x "$deb" "$V1_ROOT"
      rm -rf "$dl"
      printf '%s\n' '#!/bin/sh' \
        "# Compose v1 ($ver, Debian bookworm's package) extracted beside Compose v2; see scripts/setup-system.sh." \
        "PYTHONPATH=$V1_ROOT/usr/lib/python3/dist-packages\${PYTHONPATH:+:\$PYTHONPATH} exec /usr/bin/python3 $V1_ROOT/usr/bin/docker-compose \"\$@\"" |
        as_root tee "$V1_BIN" >/dev/null
      as_root chmod 755 "$V1_BIN"
      v=$("$V1_BIN" version --short 2>/dev/null) || { log "Compose v1 at $V1_BIN does not run"; exit 3; }
      log "Compose v1 $v: at $V1_BIN (files in $V1_ROOT; SANDSTACK_COMPOSE=$V1_BIN selects it)"
    fi
  fi
fi

# --- 4. Base image -------------------------------------------------------------------------------
BASE="debian:bookworm-slim"
if docker image inspect "$BASE" >/dev/null 2>&1; then
  log "base image $BASE: present"
elif [ "$DRY_RUN" -eq 1 ]; then
  log "dry run, would pull $BASE or build it offline with debootstrap"
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

# --- 5. Chromium (only with --with-chromium) -----------------------------------------------------
if [ "$WITH_CHROMIUM" -eq 1 ]; then
  CHROMIUM=/usr/bin/chromium
  if [ -x "$CHROMIUM" ]; then
    log "Chromium: present ($("$CHROMIUM" --version 2>/dev/null | head -n 1))"
  else
    apt_install chromium
    if [ "$DRY_RUN" -eq 0 ]; then
      [ -x "$CHROMIUM" ] || { log "Chromium: the apt package did not provide $CHROMIUM"; exit 3; }
      log "Chromium: installed ($("$CHROMIUM" --version 2>/dev/null | head -n 1))"
    fi
  fi
fi

# --- 6. SSH test hosts' tools (only with --with-ssh) ---------------------------------------------
# The remote-engine tests (test/integration/remote.test.ts) run an sshd per test host (a network
# namespace); sandstack itself needs only the ssh client. The system sshd is not started here.
if [ "$WITH_SSH" -eq 1 ]; then
  missing=()
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v rsync >/dev/null 2>&1 || missing+=(rsync)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
  if [ "${#missing[@]}" -eq 0 ]; then
    log "SSH test host tools: present ($(ssh -V 2>&1))"
  else
    apt_install --no-install-recommends "${missing[@]}"
    [ "$DRY_RUN" -eq 1 ] || [ -x /usr/sbin/sshd ] || { log "SSH test host tools: /usr/sbin/sshd missing after the install"; exit 3; }
    log "SSH test host tools: installed (${missing[*]})"
  fi
fi
log "ready"
