#!/usr/bin/env bash
# Start, stop or check the real servers freshrank's integration tests and scale-out mode use.
# Everything binds 127.0.0.1; data and logs live under $FRESHRANK_SERVICES_DIR (default .freshrank/services);
# downloads are cached under $FRESHRANK_DOWNLOAD_CACHE (default ~/.cache/freshrank).
# Usage: scripts/services.sh up|down|status [redis|mariadb|opensearch|kafka ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export SERVICES_DIR="${FRESHRANK_SERVICES_DIR:-$root/.freshrank/services}"
export DOWNLOAD_CACHE="${FRESHRANK_DOWNLOAD_CACHE:-$HOME/.cache/freshrank}"
export REDIS_PORT="${FRESHRANK_REDIS_PORT:-6379}"
export MARIADB_PORT="${FRESHRANK_MARIADB_PORT:-3306}"
export OPENSEARCH_PORT="${FRESHRANK_OPENSEARCH_PORT:-9200}"
export KAFKA_PORT="${FRESHRANK_KAFKA_PORT:-9092}"
mkdir -p "$SERVICES_DIR" "$DOWNLOAD_CACHE"

log() { echo "[services] $*" >&2; }

wait_for() {  # wait_for NAME SECONDS COMMAND...
  local name=$1 secs=$2; shift 2
  for _ in $(seq "$secs"); do "$@" >/dev/null 2>&1 && { log "$name is up"; return 0; }; sleep 1; done
  log "$name did not come up in ${secs}s; see $SERVICES_DIR/$name/*.log"; return 1
}

# ---- Redis -------------------------------------------------------------------------------------
redis_up() {
  redis_status && return 0
  mkdir -p "$SERVICES_DIR/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save "" --appendonly no \
    --dir "$SERVICES_DIR/redis" --logfile "$SERVICES_DIR/redis/redis.log" --pidfile "$SERVICES_DIR/redis/redis.pid"
  wait_for redis 30 redis_status
}
redis_down() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; }
redis_status() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

# ---- MariaDB -----------------------------------------------------------------------------------
mariadb_sock() { echo "$SERVICES_DIR/mariadb/mysqld.sock"; }
mariadb_up() {
  mariadb_status && return 0
  local dir="$SERVICES_DIR/mariadb"
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    mkdir -p "$dir/data"
    chown -R mysql:mysql "$dir" 2>/dev/null || true
    mariadb-install-db --user=mysql --datadir="$dir/data" --auth-root-authentication-method=normal \
      --skip-test-db >"$dir/install.log" 2>&1
  fi
  chown -R mysql:mysql "$dir" 2>/dev/null || true
  local bin; bin="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
  (setsid "$bin" --user=mysql --datadir="$dir/data" --bind-address=127.0.0.1 --port="$MARIADB_PORT" \
    --socket="$(mariadb_sock)" --pid-file="$dir/mariadbd.pid" --log-error="$dir/mariadbd.log" \
    --skip-name-resolve >/dev/null 2>&1 &)
  wait_for mariadb 60 mariadb_status
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
  local pid="$SERVICES_DIR/mariadb/mariadbd.pid"
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  for _ in $(seq 30); do mariadb_status || return 0; sleep 1; done
}
mariadb_status() { mariadb-admin --socket="$(mariadb_sock)" -uroot ping 2>/dev/null | grep -q alive; }

# ---- OpenSearch and Kafka live in their own scripts (downloaded from Maven Central) -------------
opensearch_up() { bash "$here/opensearch.sh" up; }
opensearch_down() { bash "$here/opensearch.sh" down; }
opensearch_status() { bash "$here/opensearch.sh" status >/dev/null; }
kafka_up() { bash "$here/kafka.sh" up; }
kafka_down() { bash "$here/kafka.sh" down; }
kafka_status() { bash "$here/kafka.sh" status >/dev/null; }

all_services=(redis mariadb)
[ -f "$here/opensearch.sh" ] && all_services+=(opensearch)
[ -f "$here/kafka.sh" ] && all_services+=(kafka)

cmd="${1:-status}"; shift || true
services=("$@"); [ ${#services[@]} -eq 0 ] && services=("${all_services[@]}")
case "$cmd" in
  up) bash "$here/install-system-deps.sh"; for s in "${services[@]}"; do "${s}_up"; done ;;
  down) for s in "${services[@]}"; do "${s}_down"; done ;;
  status)
    rc=0
    for s in "${services[@]}"; do
      if "${s}_status"; then echo "$s: up"; else echo "$s: down"; rc=1; fi
    done
    exit $rc ;;
  *) echo "usage: $0 up|down|status [service ...]" >&2; exit 2 ;;
esac
