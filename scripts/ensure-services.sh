#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ are up and hold the role, databases and user that
# .env names. Usually they are already running; where they are installed but stopped,
# start them; where they are missing on Debian/Ubuntu as root, install them with apt.
# Otherwise stop with a message pointing at `docker-compose up -d`.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -f .env ] || python3 scripts/init_env.py
set -a; . ./.env; set +a

: "${POSTGRES_HOST:=127.0.0.1}" "${POSTGRES_PORT:=5432}" "${POSTGRES_USER:=gits}" "${POSTGRES_DB:=gits}"
: "${RABBITMQ_HOST:=127.0.0.1}" "${RABBITMQ_PORT:=5672}" "${RABBITMQ_USER:=gits}" "${RABBITMQ_VHOST:=/}"

say() { printf 'ensure-services: %s\n' "$*"; }
die() {
    say "$*" >&2
    say "Alternatively run the stores in containers: docker-compose up -d rabbitmq timescaledb mongodb" >&2
    exit 1
}
is_local() { [[ "$1" == 127.* || "$1" == localhost || "$1" == ::1 ]]; }
port_open() { timeout 1 bash -c ">/dev/tcp/$1/$2" 2>/dev/null; }
wait_port() {  # host port seconds
    for _ in $(seq "$3"); do port_open "$1" "$2" && return 0; sleep 1; done
    return 1
}
apt_install() {
    command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] || return 1
    say "installing $* with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

start_postgres() {
    command -v pg_lsclusters >/dev/null || apt_install postgresql ||
        die "PostgreSQL is not reachable on $POSTGRES_HOST:$POSTGRES_PORT and cannot be installed here (needs Debian/Ubuntu and root)."
    [ -n "$(pg_lsclusters -h 2>/dev/null)" ] || die "PostgreSQL is installed but has no cluster; create one with pg_createcluster."
    pg_lsclusters -h | while read -r version cluster _port status _rest; do
        if [ "$status" != online ]; then
            say "starting PostgreSQL $version/$cluster"
            pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
        fi
    done
}

# Run SQL as a superuser: the postgres OS user over the local socket, else TCP as postgres.
psql_admin() {
    if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 && command -v runuser >/dev/null; then
        runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$POSTGRES_PORT" "$@"
    else
        psql -X -q -v ON_ERROR_STOP=1 -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U postgres "$@"
    fi
}

provision_postgres() {
    [ -n "${POSTGRES_PASSWORD:-}" ] || die "POSTGRES_PASSWORD is empty: run 'make env'."
    if ! psql_admin -d postgres -c 'select 1' >/dev/null 2>&1; then
        say "no superuser access to PostgreSQL; assuming role $POSTGRES_USER and its databases exist"
        return 0
    fi
    psql_admin -d postgres -v user="$POSTGRES_USER" -v pw="$POSTGRES_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE :"user" WITH LOGIN PASSWORD :'pw';
SQL
    for db in "$POSTGRES_DB" "${POSTGRES_DB}_test"; do
        psql_admin -d postgres -v db="$db" -v user="$POSTGRES_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
        # TimescaleDB where the extension is installed; plain tables otherwise.
        psql_admin -d "$db" -c "DO \$\$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
                CREATE EXTENSION IF NOT EXISTS timescaledb;
            END IF;
        EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'timescaledb not loaded: %', SQLERRM; END \$\$;" >/dev/null
    done
}

start_rabbitmq() {
    command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server ||
        die "RabbitMQ is not reachable on $RABBITMQ_HOST:$RABBITMQ_PORT and cannot be installed here (needs Debian/Ubuntu and root)."
    say "starting RabbitMQ"
    rabbitmq-server -detached
}

provision_rabbitmq() {
    [ -n "${RABBITMQ_PASSWORD:-}" ] || die "RABBITMQ_PASSWORD is empty: run 'make env'."
    if ! command -v rabbitmqctl >/dev/null || ! rabbitmqctl -q status >/dev/null 2>&1; then
        say "cannot administer RabbitMQ here; assuming user $RABBITMQ_USER exists"
        return 0
    fi
    if ! rabbitmqctl -q list_users | awk '{print $1}' | grep -qx "$RABBITMQ_USER"; then
        rabbitmqctl -q add_user "$RABBITMQ_USER" "$RABBITMQ_PASSWORD" >/dev/null
    elif ! rabbitmqctl -q authenticate_user "$RABBITMQ_USER" "$RABBITMQ_PASSWORD" >/dev/null 2>&1; then
        rabbitmqctl -q change_password "$RABBITMQ_USER" "$RABBITMQ_PASSWORD" >/dev/null
    fi
    rabbitmqctl -q list_vhosts | grep -qx -- "$RABBITMQ_VHOST" || rabbitmqctl -q add_vhost "$RABBITMQ_VHOST"
    rabbitmqctl -q set_permissions -p "$RABBITMQ_VHOST" "$RABBITMQ_USER" '.*' '.*' '.*' >/dev/null
}

if ! port_open "$POSTGRES_HOST" "$POSTGRES_PORT"; then
    is_local "$POSTGRES_HOST" || die "PostgreSQL at $POSTGRES_HOST:$POSTGRES_PORT is not reachable."
    start_postgres
    wait_port "$POSTGRES_HOST" "$POSTGRES_PORT" 30 || die "PostgreSQL did not come up on port $POSTGRES_PORT."
fi
is_local "$POSTGRES_HOST" && provision_postgres

if ! port_open "$RABBITMQ_HOST" "$RABBITMQ_PORT"; then
    is_local "$RABBITMQ_HOST" || die "RabbitMQ at $RABBITMQ_HOST:$RABBITMQ_PORT is not reachable."
    start_rabbitmq
    wait_port "$RABBITMQ_HOST" "$RABBITMQ_PORT" 90 || die "RabbitMQ did not come up on port $RABBITMQ_PORT; see /var/log/rabbitmq."
fi
is_local "$RABBITMQ_HOST" && provision_rabbitmq

say "PostgreSQL $POSTGRES_HOST:$POSTGRES_PORT and RabbitMQ $RABBITMQ_HOST:$RABBITMQ_PORT are up"
