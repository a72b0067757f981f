#!/usr/bin/env bash
# PostgreSQL and Redis for chapters 4 to 6.
#
#   scripts/services.sh up     [postgres] [redis]   start them (both when none is named)
#   scripts/services.sh down   [postgres] [redis]   stop what this script started
#   scripts/services.sh status                      what runs where
#
# Same ports and credentials everywhere, matching the graders' defaults:
#   DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/course
#   REDIS_URL=redis://127.0.0.1:6379
#
# `up` is idempotent and tries, in order: a server already listening on the port (reused as
# is); `docker compose up -d` when a Docker engine answers; local `postgres` / `redis-server`
# binaries with their data under target/services/ (installed with apt-get when missing and
# running as root, otherwise the script prints what to install).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${COURSE_SERVICES_DIR:-$ROOT/target/services}
PG_PORT=5432
REDIS_PORT=6379
PG_PASSWORD=postgres
PG_DATABASE=course

say() { printf '%s\n' "services: $*"; }
die() { printf '%s\n' "services: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Whether something accepts TCP connections on 127.0.0.1:<port> (bash's /dev/tcp, no nc needed).
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_listening() { # <port> <what> <log>
    for _ in $(seq 1 100); do
        listening "$1" && return 0
        sleep 0.1
    done
    [ -f "$3" ] && tail -n 20 "$3" >&2
    die "$2 did not start listening on 127.0.0.1:$1"
}

docker_works() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

APT_UPDATED=
install_packages() { # <package>...
    if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
        die "missing $*: install with \`sudo apt-get install $*\` (or run this script with sudo)"
    fi
    if [ -z "$APT_UPDATED" ]; then
        say "apt-get update"
        apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---------------------------------------------------------------- PostgreSQL

pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$dir" ]; then echo "$dir"; return; fi
    command -v pg_ctl >/dev/null 2>&1 && dirname "$(command -v pg_ctl)"
}

# The data folder: target/services/postgres, unless the checkout lives where the `postgres`
# user cannot reach it (under /root, say): then a folder of its own home, one per checkout.
pg_datadir() {
    if is_root && ! runuser -u postgres -- test -x "$DATA" 2>/dev/null; then
        mkdir -p "$DATA"
        if ! runuser -u postgres -- test -x "$DATA" 2>/dev/null; then
            echo "/var/lib/postgresql/course-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
            return
        fi
    fi
    echo "$DATA/postgres"
}

# Runs a PostgreSQL server command as the `postgres` user when we are root (it refuses root).
as_pg() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_create_database() {
    local psql
    psql="$(pg_bindir)/psql"
    [ -x "$psql" ] || psql=psql
    export PGPASSWORD=$PG_PASSWORD
    if ! "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'" 2>/dev/null | grep -q 1; then
        "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE $PG_DATABASE" \
            || die "PostgreSQL answers on $PG_PORT but user postgres/postgres cannot create database $PG_DATABASE"
        say "created database $PG_DATABASE"
    fi
}

postgres_up() {
    if listening "$PG_PORT"; then
        say "postgres: reusing the server already listening on 127.0.0.1:$PG_PORT"
        pg_create_database
        return
    fi
    if docker_works; then
        say "postgres: docker compose up -d postgres"
        docker compose -f "$ROOT/docker-compose.yml" up -d postgres
        wait_listening "$PG_PORT" PostgreSQL /dev/null
        echo docker > "$DATA/postgres.mode" 2>/dev/null || true
        # The image needs a moment after opening the port before it accepts logins.
        for _ in $(seq 1 50); do pg_create_database 2>/dev/null && return; sleep 0.2; done
        pg_create_database
        return
    fi
    local bin
    bin=$(pg_bindir || true)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        install_packages postgresql
        bin=$(pg_bindir)
    fi
    local dir
    dir=$(pg_datadir)
    mkdir -p "$DATA"
    if [ ! -f "$dir/PG_VERSION" ]; then
        say "postgres: initdb in ${dir#"$ROOT"/}"
        mkdir -p "$dir"
        local pwfile
        pwfile="$(dirname "$dir")/.pgpass-init-$$"
        echo "$PG_PASSWORD" > "$pwfile"
        if is_root; then chown postgres "$dir" "$pwfile"; fi
        chmod 700 "$dir"
        as_pg "$bin/initdb" -D "$dir" -U postgres --pwfile="$pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"$DATA/initdb.log" 2>&1 \
            || { rm -f "$pwfile"; cat "$DATA/initdb.log" >&2; die "initdb failed"; }
        rm -f "$pwfile"
    fi
    say "postgres: starting PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
    # Sockets in the data folder: no need for a writable /var/run/postgresql.
    as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $dir -c max_connections=300" start >/dev/null \
        || { tail -n 20 "$dir/server.log" >&2; die "PostgreSQL did not start"; }
    echo local > "$DATA/postgres.mode"
    wait_listening "$PG_PORT" PostgreSQL "$dir/server.log"
    pg_create_database
}

postgres_down() {
    case "$(cat "$DATA/postgres.mode" 2>/dev/null)" in
        local)
            as_pg "$(pg_bindir)/pg_ctl" -D "$(pg_datadir)" -m fast -w stop >/dev/null && say "postgres: stopped" ;;
        docker)
            docker compose -f "$ROOT/docker-compose.yml" stop postgres && say "postgres: stopped (docker)" ;;
        *) say "postgres: not started by this script; left alone" ;;
    esac
    rm -f "$DATA/postgres.mode"
}

# ---------------------------------------------------------------- Redis

redis_up() {
    if listening "$REDIS_PORT"; then
        say "redis: reusing the server already listening on 127.0.0.1:$REDIS_PORT"
        return
    fi
    if docker_works; then
        say "redis: docker compose up -d redis"
        docker compose -f "$ROOT/docker-compose.yml" up -d redis
        wait_listening "$REDIS_PORT" Redis /dev/null
        echo docker > "$DATA/redis.mode" 2>/dev/null || true
        return
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        install_packages redis-server redis-tools
        # Some systems start the packaged service on install: use it if so.
        if listening "$REDIS_PORT"; then
            say "redis: the packaged service is running on 127.0.0.1:$REDIS_PORT"
            return
        fi
    fi
    local dir="$DATA/redis"
    mkdir -p "$dir"
    say "redis: starting Redis $(redis-server --version | awk '{print $3}' | sed 's/^v=//') on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
        --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" \
        --save "" --appendonly no
    echo local > "$DATA/redis.mode"
    wait_listening "$REDIS_PORT" Redis "$dir/redis.log"
}

redis_down() {
    case "$(cat "$DATA/redis.mode" 2>/dev/null)" in
        local)
            if [ -f "$DATA/redis/redis.pid" ]; then
                kill "$(cat "$DATA/redis/redis.pid")" 2>/dev/null || true
                rm -f "$DATA/redis/redis.pid"
            fi
            say "redis: stopped" ;;
        docker)
            docker compose -f "$ROOT/docker-compose.yml" stop redis && say "redis: stopped (docker)" ;;
        *) say "redis: not started by this script; left alone" ;;
    esac
    rm -f "$DATA/redis.mode"
}

# ---------------------------------------------------------------- status

status() {
    local mode
    for svc in postgres:$PG_PORT redis:$REDIS_PORT; do
        local name=${svc%%:*} port=${svc##*:}
        mode=$(cat "$DATA/$name.mode" 2>/dev/null || echo "")
        if listening "$port"; then
            case "$mode" in
                local) say "$name: running on 127.0.0.1:$port (local server)" ;;
                docker) say "$name: running on 127.0.0.1:$port (docker compose)" ;;
                *) say "$name: running on 127.0.0.1:$port (started outside this script)" ;;
            esac
        else
            say "$name: not running (start: scripts/services.sh up $name)"
        fi
    done
}

main() {
    local command=${1:-status}
    shift || true
    local targets=("$@")
    [ ${#targets[@]} -eq 0 ] && targets=(postgres redis)
    mkdir -p "$DATA"
    case "$command" in
        up | down)
            for target in "${targets[@]}"; do
                case "$target" in
                    postgres | redis) "${target}_${command}" ;;
                    *) die "unknown service '$target' (postgres or redis)" ;;
                esac
            done ;;
        status) status ;;
        -h | --help | help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
        *) die "unknown command '$command': use up, down or status" ;;
    esac
}

main "$@"
