#!/usr/bin/env bash
# Start, stop or check the real servers freshrank's integration tests and scale-out mode use.
# Everything binds 127.0.0.1; data and logs live under $FRESHRANK_SERVICES_DIR (default .freshrank/services);
# downloads are cached under $FRESHRANK_DOWNLOAD_CACHE (default ~/.cache/freshrank).
# Usage: scripts/services.sh up|down|status [redis|mariadb|postgres|opensearch|kafka|elasticsearch ...]
# Elasticsearch (scripts/elasticsearch.sh, port 9201) is not in the default set: it starts only when named.
#
# Ports: $FRESHRANK_<NAME>_PORT, else the port this checkout used before, else the default. Before a start each
# port is checked: when a process that is not this checkout's server holds it, the script names the port and
# the process and, with FRESHRANK_PORT_CONFLICT=next (the default), takes the next free port; with
# FRESHRANK_PORT_CONFLICT=fail it stops with exit code 3. The ports in use and the URLs the tests read are
# written to $FRESHRANK_SERVICES_DIR/ports.env (tests/conftest.py loads it).
# Servers run as the invoking user; as root, MariaDB runs as root (--user=root) and PostgreSQL/OpenSearch (which
# refuse root) as their system users, with data moved to /var/tmp when the checkout lies below a directory those
# users cannot enter (a 0700 home). A server that fails to start has its own log printed.
# Exit codes: 0 ok, 1 a server is down (status) or failed to start, 2 usage, 3 a port is taken (fail mode).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export SERVICES_DIR="${FRESHRANK_SERVICES_DIR:-$root/.freshrank/services}"
export DOWNLOAD_CACHE="${FRESHRANK_DOWNLOAD_CACHE:-$HOME/.cache/freshrank}"
mkdir -p "$SERVICES_DIR" "$DOWNLOAD_CACHE"
PORTS_FILE="$SERVICES_DIR/ports.env"
CONFLICT="${FRESHRANK_PORT_CONFLICT:-next}"

log() { echo "[services] $*" >&2; }

saved_port() {  # saved_port NAME DEFAULT: $FRESHRANK_NAME_PORT, else ports.env, else DEFAULT
  local var="FRESHRANK_${1}_PORT" saved=""
  [ -f "$PORTS_FILE" ] && saved="$(sed -n "s/^${var}=\([0-9]*\)$/\1/p" "$PORTS_FILE" | tail -n1)"
  local port="${!var:-${saved:-$2}}"
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] \
    || { log "$var must be a TCP port (1..65535), got '$port'"; exit 2; }
  echo "$port"
}
export REDIS_PORT; REDIS_PORT="$(saved_port REDIS 6379)"
export MARIADB_PORT; MARIADB_PORT="$(saved_port MARIADB 3306)"
export POSTGRES_PORT; POSTGRES_PORT="$(saved_port POSTGRES 5432)"
export OPENSEARCH_PORT; OPENSEARCH_PORT="$(saved_port OPENSEARCH 9200)"
export KAFKA_PORT; KAFKA_PORT="$(saved_port KAFKA 9092)"
export ELASTICSEARCH_PORT; ELASTICSEARCH_PORT="$(saved_port ELASTICSEARCH 9201)"
ELASTICSEARCH_AUTH="elastic:${FRESHRANK_ELASTICSEARCH_PASSWORD:-freshrank-local}"  # scripts/elasticsearch.sh

write_ports() {
  cat >"$PORTS_FILE.tmp" <<EOF
# Written by scripts/services.sh: the ports this checkout's servers use, and the URLs the tests read.
FRESHRANK_REDIS_PORT=$REDIS_PORT
FRESHRANK_MARIADB_PORT=$MARIADB_PORT
FRESHRANK_POSTGRES_PORT=$POSTGRES_PORT
FRESHRANK_OPENSEARCH_PORT=$OPENSEARCH_PORT
FRESHRANK_KAFKA_PORT=$KAFKA_PORT
FRESHRANK_ELASTICSEARCH_PORT=$ELASTICSEARCH_PORT
FRESHRANK_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
FRESHRANK_TEST_MARIADB_URL=mysql+pymysql://freshrank:freshrank@127.0.0.1:$MARIADB_PORT/freshrank_test
FRESHRANK_TEST_POSTGRES_URL=postgresql+psycopg://freshrank:freshrank@127.0.0.1:$POSTGRES_PORT/freshrank_test
FRESHRANK_TEST_OPENSEARCH=127.0.0.1:$OPENSEARCH_PORT
FRESHRANK_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
FRESHRANK_TEST_ELASTICSEARCH=$ELASTICSEARCH_AUTH@127.0.0.1:$ELASTICSEARCH_PORT
EOF
  mv "$PORTS_FILE.tmp" "$PORTS_FILE"
}

# ---- Ports and processes -----------------------------------------------------------------------
port_busy() {  # something listens on the TCP port (any address)
  if command -v ss >/dev/null; then [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; return; fi
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
port_pid() { ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true; }
describe_port() {  # who holds the port, for messages
  local pid; pid="$(port_pid "$1")"
  if [ -z "$pid" ]; then echo "a process this user cannot see (another user's; try: sudo ss -ltnp 'sport = :$1')"
  else echo "pid $pid ($(ps -o user=,args= -p "$pid" 2>/dev/null | tr -s " " | cut -c1-150))"; fi
}
pidfile_pid() { [ -f "$1" ] && head -n1 "$1" | tr -dc 0-9 || true; }
is_ours() {  # is_ours PIDFILE PORT: the port's listener is the process in our pid file
  local pid; pid="$(pidfile_pid "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(port_pid "$2")" = "$pid" ]
}

claim_port() {  # claim_port SERVICE VAR PIDFILE [COMPANION_OFFSET...]: make $VAR a port we may listen on
  local svc=$1 var=$2 pidfile=$3; shift 3
  local port=${!var} off taken=""
  for off in 0 "$@"; do
    if port_busy $((port + off)) && ! is_ours "$pidfile" $((port + off)); then taken=$((port + off)); break; fi
  done
  [ -z "$taken" ] && return 0
  log "$svc: port $taken is taken by $(describe_port "$taken"), which is not this checkout's $svc"
  if [ "$CONFLICT" != next ]; then
    log "$svc: stopping (FRESHRANK_PORT_CONFLICT=$CONFLICT). Free the port, or set FRESHRANK_${var}=<port>," \
      "or FRESHRANK_PORT_CONFLICT=next to take the next free one"
    exit 3
  fi
  local candidate free
  for candidate in $(seq $((port + 1)) $((port + 200))); do
    free=1
    for off in 0 "$@"; do port_busy $((candidate + off)) && { free=0; break; }; done
    [ $free = 1 ] && ! reserved "$candidate" && {
      printf -v "$var" '%s' "$candidate"; export "${var?}"; write_ports
      log "$svc: using port $candidate instead (saved in $PORTS_FILE, which the tests read)"; return 0; }
  done
  log "$svc: no free port in $((port + 1))..$((port + 200))"; exit 3
}
reserved() {  # another of our servers' ports (or their companions)
  local p=$1
  for q in "$REDIS_PORT" "$MARIADB_PORT" "$POSTGRES_PORT" "$OPENSEARCH_PORT" $((OPENSEARCH_PORT + 100)) \
    "$KAFKA_PORT" $((KAFKA_PORT + 1)) "$ELASTICSEARCH_PORT" $((ELASTICSEARCH_PORT + 100)); do [ "$p" = "$q" ] && return 0; done
  return 1
}

wait_up() {  # wait_up NAME SECONDS PIDFILE LOG CHECK...: until CHECK passes; fail fast when the server died
  local name=$1 secs=$2 pidfile=$3 logfile=$4; shift 4
  local pid
  for i in $(seq "$secs"); do
    "$@" >/dev/null 2>&1 && { log "$name is up"; return 0; }
    pid="$(pidfile_pid "$pidfile")"
    if [ "$i" -gt 5 ] && { [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; }; then break; fi
    sleep 1
  done
  log "$name did not come up; the last lines of $logfile:"
  tail -n 25 "$logfile" >&2 2>/dev/null || true
  exit 1
}

# Where a server that runs as another system user keeps its data: under the services dir when every directory
# above it can be entered by others, else under /var/tmp (root's checkout in a 0700 home).
world_enterable() {
  local d=$1
  while [ "$d" != / ]; do
    [ -e "$d" ] && ! [ "$(( 0$(stat -c %a "$d") & 1 ))" = 1 ] && return 1
    d="$(dirname "$d")"
  done
}
server_dir() {  # server_dir: the services dir for servers run as a system user
  if [ "$(id -u)" -ne 0 ] || world_enterable "$SERVICES_DIR"; then echo "$SERVICES_DIR"; return; fi
  local d; d="/var/tmp/freshrank-services-$(echo "$SERVICES_DIR" | cksum | cut -d' ' -f1)"
  mkdir -p "$d"; chmod 755 "$d"; echo "$d"
}

# ---- Redis -------------------------------------------------------------------------------------
redis_pidfile() { echo "$SERVICES_DIR/redis/redis.pid"; }
redis_up() {
  redis_status && return 0
  claim_port redis REDIS_PORT "$(redis_pidfile)"
  mkdir -p "$SERVICES_DIR/redis"
  local logfile="$SERVICES_DIR/redis/redis.log"
  rm -f "$(redis_pidfile)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save "" --appendonly no \
    --dir "$SERVICES_DIR/redis" --logfile "$logfile" --pidfile "$(redis_pidfile)" \
    || { log "redis-server failed:"; tail -n 20 "$logfile" >&2; exit 1; }
  wait_up redis 30 "$(redis_pidfile)" "$logfile" redis_status
}
redis_down() { is_ours "$(redis_pidfile)" "$REDIS_PORT" && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; }
redis_status() {
  is_ours "$(redis_pidfile)" "$REDIS_PORT" && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG
}

# ---- MariaDB (runs as the invoking user: a mysql user could not enter a 0700 checkout) --------------------
mariadb_sock() { echo "$SERVICES_DIR/mariadb/mysqld.sock"; }
mariadb_pidfile() { echo "$SERVICES_DIR/mariadb/mariadbd.pid"; }
mariadb_up() {
  mariadb_status && return 0
  claim_port mariadb MARIADB_PORT "$(mariadb_pidfile)"
  local dir="$SERVICES_DIR/mariadb" user; user="$(id -un)"
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    rm -rf "$dir/data"; mkdir -p "$dir/data"
    mariadb-install-db --user="$user" --datadir="$dir/data" --auth-root-authentication-method=normal \
      --skip-test-db >"$dir/install.log" 2>&1 \
      || { log "mariadb-install-db failed:"; tail -n 25 "$dir/install.log" >&2; exit 1; }
  fi
  # Data an older version of this script left owned by mysql becomes the invoking user's.
  [ "$(stat -c %U "$dir/data")" = "$user" ] || chown -R "$user:" "$dir"
  local bin; bin="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
  rm -f "$(mariadb_pidfile)"
  (setsid "$bin" --user="$user" --datadir="$dir/data" --bind-address=127.0.0.1 --port="$MARIADB_PORT" \
    --socket="$(mariadb_sock)" --pid-file="$(mariadb_pidfile)" --log-error="$dir/mariadbd.log" \
    --skip-name-resolve >>"$dir/mariadbd.log" 2>&1 &)
  wait_up mariadb 60 "$(mariadb_pidfile)" "$dir/mariadbd.log" mariadb_status
  mariadb --socket="$(mariadb_sock)" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS freshrank;
CREATE DATABASE IF NOT EXISTS freshrank_test;
CREATE USER IF NOT EXISTS 'freshrank'@'127.0.0.1' IDENTIFIED BY 'freshrank';
CREATE USER IF NOT EXISTS 'freshrank'@'localhost' IDENTIFIED BY 'freshrank';
GRANT ALL PRIVILEGES ON freshrank.* TO 'freshrank'@'127.0.0.1';
GRANT ALL PRIVILEGES ON freshrank_test.* TO 'freshrank'@'127.0.0.1';
GRANT ALL PRIVILEGES ON freshrank.* TO 'freshrank'@'localhost';
GRANT ALL PRIVILEGES ON freshrank_test.* TO 'freshrank'@'localhost';
FLUSH PRIVILEGES;
SQL
}
mariadb_down() {
  local pid; pid="$(pidfile_pid "$(mariadb_pidfile)")"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  for _ in $(seq 30); do mariadb_status || return 0; sleep 1; done
}
mariadb_status() {
  is_ours "$(mariadb_pidfile)" "$MARIADB_PORT" \
    && mariadb-admin --socket="$(mariadb_sock)" -uroot ping 2>/dev/null | grep -q alive
}

# ---- PostgreSQL (Debian's postgresql-15; it refuses root, so root runs it as the postgres user) ------------
PG_BIN="${FRESHRANK_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"
postgres_dir() { echo "$(server_dir)/postgres"; }
postgres_pidfile() { echo "$(postgres_dir)/data/postmaster.pid"; }
pg_user() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
pg_sql() { as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(postgres_dir)" -p "$POSTGRES_PORT" -d postgres "$@"; }
postgres_up() {
  postgres_status && return 0
  [ -x "$PG_BIN/pg_ctl" ] || { log "PostgreSQL not found under /usr/lib/postgresql (apt-get install postgresql)"; exit 1; }
  claim_port postgres POSTGRES_PORT "$(postgres_pidfile)"
  local dir; dir="$(postgres_dir)"
  mkdir -p "$dir"
  [ "$dir" = "$SERVICES_DIR/postgres" ] || ln -sfn "$dir" "$SERVICES_DIR/postgres.data-is-here"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U "$(pg_user)" --auth-local=peer --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { log "initdb failed:"; tail -n 25 "$dir/initdb.log" >&2; exit 1; }
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $POSTGRES_PORT -k $dir" start >/dev/null 2>&1 \
    || { log "postgres did not start; the last lines of $dir/postgres.log:"; tail -n 25 "$dir/postgres.log" >&2; exit 1; }
  wait_up postgres 30 "$(postgres_pidfile)" "$dir/postgres.log" postgres_status
  pg_sql <<'SQL'
SELECT 'CREATE ROLE freshrank LOGIN PASSWORD ''freshrank'''
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'freshrank')\gexec
SELECT 'CREATE DATABASE freshrank OWNER freshrank'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'freshrank')\gexec
SELECT 'CREATE DATABASE freshrank_test OWNER freshrank'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'freshrank_test')\gexec
SQL
}
postgres_down() {
  [ -f "$(postgres_pidfile)" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$(postgres_dir)/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}
postgres_status() {
  is_ours "$(postgres_pidfile)" "$POSTGRES_PORT" && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT"
}

# ---- OpenSearch and Kafka live in their own scripts (downloaded from Maven Central) -------------
opensearch_dir() {
  local d; d="$(server_dir)"
  if [ "$OPENSEARCH_PORT" = 9200 ]; then echo "$d/opensearch"; else echo "$d/opensearch-$OPENSEARCH_PORT"; fi
}
opensearch_pidfile() { echo "$(opensearch_dir)/opensearch.pid"; }
opensearch_up() {
  opensearch_status && return 0
  claim_port opensearch OPENSEARCH_PORT "$(opensearch_pidfile)" 100
  SERVICES_DIR="$(server_dir)" bash "$here/opensearch.sh" up
}
opensearch_down() { SERVICES_DIR="$(server_dir)" bash "$here/opensearch.sh" down; }
opensearch_status() {
  is_ours "$(opensearch_pidfile)" "$OPENSEARCH_PORT" && SERVICES_DIR="$(server_dir)" bash "$here/opensearch.sh" status >/dev/null
}
kafka_pidfile() { echo "$SERVICES_DIR/kafka/kafka.pid"; }
kafka_up() {
  kafka_status && return 0
  claim_port kafka KAFKA_PORT "$(kafka_pidfile)" 1
  bash "$here/kafka.sh" up
}
kafka_down() { bash "$here/kafka.sh" down; }
kafka_status() { is_ours "$(kafka_pidfile)" "$KAFKA_PORT" && bash "$here/kafka.sh" status >/dev/null; }
elasticsearch_dir() {
  local d; d="$(server_dir)"
  if [ "$ELASTICSEARCH_PORT" = 9201 ]; then echo "$d/elasticsearch"; else echo "$d/elasticsearch-$ELASTICSEARCH_PORT"; fi
}
elasticsearch_up() {
  elasticsearch_status && return 0
  claim_port elasticsearch ELASTICSEARCH_PORT "$(elasticsearch_dir)/elasticsearch.pid" 100
  SERVICES_DIR="$(server_dir)" bash "$here/elasticsearch.sh" up
}
elasticsearch_down() { SERVICES_DIR="$(server_dir)" bash "$here/elasticsearch.sh" down; }
elasticsearch_status() {
  is_ours "$(elasticsearch_dir)/elasticsearch.pid" "$ELASTICSEARCH_PORT" \
    && SERVICES_DIR="$(server_dir)" bash "$here/elasticsearch.sh" status >/dev/null
}

all_services=(redis mariadb postgres)
[ -f "$here/opensearch.sh" ] && all_services+=(opensearch)
[ -f "$here/kafka.sh" ] && all_services+=(kafka)

port_of() { local var; var="$(echo "$1" | tr '[:lower:]' '[:upper:]')_PORT"; echo "${!var:-?}"; }

cmd="${1:-status}"; shift || true
services=("$@"); [ ${#services[@]} -eq 0 ] && services=("${all_services[@]}")
for s in "${services[@]}"; do
  declare -F "${s}_up" >/dev/null || { echo "unknown service: $s (known: ${all_services[*]})" >&2; exit 2; }
done
case "$cmd" in
  up) bash "$here/install-system-deps.sh"; write_ports; for s in "${services[@]}"; do "${s}_up"; done; write_ports ;;
  down) for s in "${services[@]}"; do "${s}_down"; done ;;
  status)
    rc=0
    for s in "${services[@]}"; do
      port="$(port_of "$s")"
      if "${s}_status"; then echo "$s: up on 127.0.0.1:$port, pid $(port_pid "$port")"
      elif port_busy "$port"; then echo "$s: down; port $port is held by $(describe_port "$port"), not ours"; rc=1
      else echo "$s: down (port $port)"; rc=1; fi
    done
    exit $rc ;;
  *) echo "usage: $0 up|down|status [service ...]" >&2; exit 2 ;;
esac
