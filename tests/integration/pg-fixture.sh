#!/bin/sh
# A throwaway PostgreSQL cluster for integration tests.
#
#   pg-fixture.sh start  DIR PORT   create a fresh cluster in DIR/data and start it
#   pg-fixture.sh stop   DIR        stop it and remove DIR
#   pg-fixture.sh pause  DIR        stop the server, keep the data ("database went away")
#   pg-fixture.sh resume DIR        start the paused server again
#   pg-fixture.sh url    DIR        print its DATABASE_URL
#
# The server listens only on a Unix socket in DIR (listen_addresses=''), so
# PORT just names the socket file (.s.PGSQL.PORT): runs in different
# directories never clash. fsync, synchronous_commit and full_page_writes are
# off (throwaway data), unless PG_FIXTURE_DURABLE=1 is set at `start`: then the
# cluster keeps PostgreSQL's (and Debian's) defaults, fsync = on,
# synchronous_commit = on, full_page_writes = on, so every commit waits for a
# WAL flush as in production (the honest conditions for bench/bench_store's
# per-row baseline). Authentication is
# trust for local connections, database abidance_test, user postgres.
# `start` writes DIR/env (DATABASE_URL=...) for tests run by hand.
# Debian's binaries are used (/usr/lib/postgresql/<newest>/bin). As root, the
# server runs as the `postgres` OS user (initdb refuses root).
set -eu

usage() {
    echo "usage: $0 start DIR PORT | stop DIR | pause DIR | resume DIR | url DIR" >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2

bindir=
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
    [ -x "$d/initdb" ] && bindir=$d
done
[ -n "$bindir" ] || { echo "pg-fixture: no /usr/lib/postgresql/*/bin/initdb" >&2; exit 1; }

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Stops whatever server runs on DIR/data (a leftover of an aborted run too).
halt() {
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
            true
    fi
}

launch() {
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}

case $cmd in
start)
    [ $# -eq 3 ] || usage
    port=$3
    halt
    rm -rf "$dir"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir"
    fi
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    if [ "${PG_FIXTURE_DURABLE:-0}" = 1 ]; then
        durability="# PG_FIXTURE_DURABLE=1: fsync, synchronous_commit, full_page_writes at their defaults (on)"
    else
        durability="fsync = off
synchronous_commit = off
full_page_writes = off"
    fi
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$dir'
$durability
max_connections = 100
shared_buffers = 64MB
log_min_messages = warning
timezone = 'UTC'
CONF
    launch || { cat "$dir/server.log" >&2; exit 1; }
    as_pg "$bindir/createdb" -h "$dir" -p "$port" -U postgres abidance_test
    url="postgresql:///abidance_test?host=$dir&port=$port&user=postgres"
    # Quoted, so the file can be sourced: the URL contains '&'.
    echo "DATABASE_URL='$url'" >"$dir/env"
    echo "$url"
    ;;
stop)
    halt
    rm -rf "$dir"
    ;;
pause)
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    ;;
resume)
    launch
    ;;
url)
    sed -n "s/^DATABASE_URL='\\(.*\\)'\$/\\1/p" "$dir/env"
    ;;
*)
    usage
    ;;
esac
