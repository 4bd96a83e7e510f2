#!/bin/sh
# Initialises $PGDATA on first start, then execs postgres in the foreground as the postgres user.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
  echo "db-entrypoint: POSTGRES_PASSWORD must be set" >&2
  exit 1
fi

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 0700 "$PGDATA"

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "db-entrypoint: initialising database cluster in $PGDATA" >&2
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  as_postgres initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
    --no-sync >/dev/null
  rm -f "$pwfile"

  # Accept password-authenticated TCP connections from anywhere (the compose network).
  printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"

  if [ "$POSTGRES_DB" != "postgres" ]; then
    # Single-user mode: no server, no socket, no waiting for it to come up and go down.
    db_ident=$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')
    owner_ident=$(printf '%s' "$POSTGRES_USER" | sed 's/"/""/g')
    echo "CREATE DATABASE \"$db_ident\" OWNER \"$owner_ident\";" \
      | as_postgres postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  sync -f "$PGDATA"
  echo "db-entrypoint: initialised (database \"$POSTGRES_DB\", user \"$POSTGRES_USER\")" >&2
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" "$@"
