#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and local clusters.
#
#   scripts/postgres.sh start DIR PORT   # initdb DIR if new, start, print the URL
#   scripts/postgres.sh stop DIR         # stop it (the data stays in DIR)
#
# The server listens only on 127.0.0.1:PORT with trust authentication: never
# use it for anything but throwaway data. Run as root, it runs as the
# `postgres` OS user (PostgreSQL refuses to run as root), and DIR is owned by
# that user. Binaries come from PATH or from Debian's /usr/lib/postgresql/*/bin.
#
# Example:
#   export WANI_TEST_POSTGRES_URL=$(scripts/postgres.sh start /tmp/wani-pg 55432)
#   cargo test -p wani-store
#   scripts/postgres.sh stop /tmp/wani-pg
set -euo pipefail

usage() {
    echo "usage: $0 start DIR PORT | $0 stop DIR" >&2
    exit 2
}

# Finds a PostgreSQL binary: PATH first, then the newest Debian install.
pgbin() {
    local name=$1 found
    if found=$(command -v "$name" 2>/dev/null); then
        echo "$found"
        return
    fi
    found=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z "$found" ]]; then
        echo "$0: cannot find $name (apt-get install -y postgresql)" >&2
        exit 1
    fi
    echo "$found"
}

# Runs a command as the postgres OS user when we are root, else as ourselves.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        # runuser keeps no terminal and needs no password; su is the fallback.
        if command -v runuser >/dev/null; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

start() {
    local dir=$1 port=$2
    [[ "$port" =~ ^[0-9]+$ ]] || usage
    local initdb pg_ctl pg_isready
    initdb=$(pgbin initdb)
    pg_ctl=$(pgbin pg_ctl)
    pg_isready=$(pgbin pg_isready)

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$dir"
        chmod 700 "$dir"
    fi
    if [[ ! -f "$dir/PG_VERSION" ]]; then
        local log
        log=$(mktemp)
        as_owner "$initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 \
            --no-instructions >"$log" 2>&1 || {
            cat "$log" >&2
            rm -f "$log"
            exit 1
        }
        rm -f "$log"
    fi
    # Already running (a second `start`): just confirm it answers below.
    if ! as_owner "$pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        # The socket goes in DIR too, so no system directory (/run/postgresql)
        # has to exist or be writable. fsync off: throwaway data, faster tests.
        as_owner "$pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" \
            start >/dev/null || {
            cat "$dir/server.log" >&2
            exit 1
        }
    fi
    # pg_ctl -w already waited; this confirms TCP on the address we print.
    local deadline=$((SECONDS + 30))
    until "$pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; do
        if ((SECONDS >= deadline)); then
            echo "$0: PostgreSQL did not accept connections on 127.0.0.1:$port" >&2
            cat "$dir/server.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "postgres://postgres@127.0.0.1:$port/postgres"
}

stop() {
    local dir=$1
    [[ -f "$dir/postmaster.pid" ]] || { echo "$0: nothing running in $dir" >&2; return 0; }
    as_owner "$(pgbin pg_ctl)" -D "$dir" -m fast -w stop >/dev/null
}

case "${1:-}" in
start) [[ $# -eq 3 ]] || usage; start "$2" "$3" ;;
stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
*) usage ;;
esac
