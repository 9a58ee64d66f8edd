#!/bin/sh
# Starts PostgreSQL on $PGDATA; on the first start, creates the cluster, a
# role `wani` and its database `wani`.
set -eu
bin=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    "$bin/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=reject >/dev/null
    # Only containers on the compose network reach this server (its port is
    # not published): they are trusted. Publish it, and this must change.
    echo "host all all samenet trust" >>"$PGDATA/pg_hba.conf"
    "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -q -U postgres -h /var/run/postgresql \
        -c "CREATE ROLE wani LOGIN" -c "CREATE DATABASE wani OWNER wani"
    "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c max_connections=200
