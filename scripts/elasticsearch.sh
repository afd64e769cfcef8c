#!/usr/bin/env bash
# A single-node Elasticsearch on 127.0.0.1 without Docker, from Maven Central (like scripts/opensearch.sh).
# The distribution `org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip` (modules
# transport-netty4, x-pack-core, x-pack-security, apm; no analysis-common, mapper-extras or painless) is fetched
# once with `mvn dependency:copy` and unpacked under $FRESHRANK_DOWNLOAD_CACHE; data, logs, config and the pid
# file live under $FRESHRANK_SERVICES_DIR/elasticsearch. Idempotent; the server is daemonised and outlives
# this script. 8.x runs on Java 17 (/usr/bin/java).
#
# Security, for local use: x-pack security is ON (HTTP basic auth, user `elastic`, password
# $FRESHRANK_ELASTICSEARCH_PASSWORD, default `freshrank-local`), TLS is OFF on both HTTP and transport, and the
# node listens on loopback only (single-node discovery). Do not expose this node beyond 127.0.0.1.
#
# Text analysis: the zip has no stemmer or ASCII folding, so a small stable-API analysis plugin
# (scripts/elasticsearch-analysis/: `porter_stem` and `asciifolding`, the names a stock Elasticsearch's
# analysis-common gives them, wrapping Lucene's own classes; compiled here with javac against the
# distribution's jars) is installed into the cached distribution.
# Usage: scripts/elasticsearch.sh up|down|status|fetch
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
SERVICES_DIR="${SERVICES_DIR:-${FRESHRANK_SERVICES_DIR:-$root/.freshrank/services}}"
DOWNLOAD_CACHE="${DOWNLOAD_CACHE:-${FRESHRANK_DOWNLOAD_CACHE:-$HOME/.cache/freshrank}}"
PORT="${ELASTICSEARCH_PORT:-${FRESHRANK_ELASTICSEARCH_PORT:-9201}}"  # never OpenSearch's 9200
TRANSPORT_PORT="${FRESHRANK_ELASTICSEARCH_TRANSPORT_PORT:-$((PORT + 100))}"
VERSION="${FRESHRANK_ELASTICSEARCH_VERSION:-8.15.0}"
PASSWORD="${FRESHRANK_ELASTICSEARCH_PASSWORD:-freshrank-local}"
# Two shared cores: a small heap keeps GC pauses short and leaves memory to the other servers.
HEAP_MIN="${FRESHRANK_ELASTICSEARCH_HEAP_MIN:-512m}"
HEAP_MAX="${FRESHRANK_ELASTICSEARCH_HEAP_MAX:-1g}"
ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$VERSION:zip"
ZIP="$DOWNLOAD_CACHE/elasticsearch-$VERSION.zip"
HOME_DIR="$DOWNLOAD_CACHE/elasticsearch-$VERSION"
PLUGIN_SRC="$here/elasticsearch-analysis"
DIR="$SERVICES_DIR/elasticsearch"
[ "$PORT" != 9201 ] && DIR="$SERVICES_DIR/elasticsearch-$PORT"
PIDFILE="$DIR/elasticsearch.pid"
RUN_USER="${FRESHRANK_ELASTICSEARCH_USER:-elasticsearch}"  # used only when this script runs as root
URL="http://127.0.0.1:$PORT"

log() { echo "[elasticsearch] $*" >&2; }

pid_alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

health() {
  curl -fsS --max-time 5 -u "elastic:$PASSWORD" "$URL/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null
}

status() { health | grep -Eq '"status":"(green|yellow)"'; }

java_home() {
  if [ -n "${ES_JAVA_HOME:-}" ]; then echo "$ES_JAVA_HOME"; return; fi
  dirname "$(dirname "$(readlink -f "$(command -v java || echo /usr/bin/java)")")"
}

fetch() {
  local stamp="$HOME_DIR/.complete-$(plugin_hash)"
  [ -f "$stamp" ] && return 0
  if [ ! -s "$ZIP" ]; then
    command -v mvn >/dev/null || { log "Maven (mvn) is needed once to download Elasticsearch $VERSION: apt-get install maven"; exit 1; }
    log "downloading $ARTIFACT from Maven Central into $DOWNLOAD_CACHE"
    mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$DOWNLOAD_CACHE" >&2
  fi
  log "unpacking $ZIP"
  local tmp; tmp="$(mktemp -d "$DOWNLOAD_CACHE/elasticsearch-unpack.XXXXXX")"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$ZIP" "$tmp"
  chmod +x "$tmp/elasticsearch-$VERSION"/bin/* "$tmp/elasticsearch-$VERSION"/lib/*/bin/* 2>/dev/null || true
  build_plugin "$tmp/elasticsearch-$VERSION"
  rm -rf "$HOME_DIR"; mv "$tmp/elasticsearch-$VERSION" "$HOME_DIR"; rm -rf "$tmp"
  touch "$stamp"
}

plugin_hash() { cat "$PLUGIN_SRC"/src/org/freshrank/analysis/*.java | sha256sum | cut -c1-12; }

# A stable-API plugin needs only its jar, a descriptor and the list of named components.
build_plugin() {  # build_plugin DISTRIBUTION_DIR
  local dist=$1 lib="$1/lib" out="$1/plugins/freshrank-analysis" classes
  command -v javac >/dev/null || { log "javac (a JDK 17) is needed to build the analysis plugin"; exit 1; }
  classes="$(mktemp -d)"
  log "building the freshrank-analysis plugin (porter stem, ASCII folding)"
  javac --release 17 -d "$classes" \
    -cp "$lib/*" "$PLUGIN_SRC"/src/org/freshrank/analysis/*.java >&2
  mkdir -p "$out"
  jar --create --file "$out/freshrank-analysis.jar" -C "$classes" .
  rm -rf "$classes"
  cp "$PLUGIN_SRC/named_components.json" "$out/"
  printf '%s\n' "description=freshrank token filters (scripts/elasticsearch-analysis)" "version=$VERSION" \
    "name=freshrank-analysis" "java.version=17" "elasticsearch.version=$VERSION" \
    >"$out/stable-plugin-descriptor.properties"
  [ -d "$dist/plugins" ]
}

write_config() {
  mkdir -p "$DIR/data" "$DIR/logs" "$DIR/config" "$DIR/tmp"
  # The config dir is per instance (ES_PATH_CONF): the cached distribution stays read-only.
  cp -n "$HOME_DIR"/config/log4j2.properties "$DIR/config/" 2>/dev/null || true
  cat >"$DIR/config/jvm.options" <<EOF
-Xms$HEAP_MIN
-Xmx$HEAP_MAX
-XX:+UseG1GC
-Djava.io.tmpdir=$DIR/tmp
-XX:+HeapDumpOnOutOfMemoryError
-XX:+ExitOnOutOfMemoryError
-XX:HeapDumpPath=$DIR/logs
-XX:ErrorFile=$DIR/logs/hs_err_pid%p.log
-Xlog:disable
EOF
  cat >"$DIR/config/elasticsearch.yml" <<EOF
# Generated by scripts/elasticsearch.sh: one node, loopback only, basic auth without TLS (local use).
cluster.name: freshrank-es-$PORT
node.name: freshrank-es-node
path.data: $DIR/data
path.logs: $DIR/logs
network.host: 127.0.0.1
http.port: $PORT
transport.port: $TRANSPORT_PORT
discovery.type: single-node
node.processors: 2
action.auto_create_index: false
cluster.routing.allocation.disk.threshold_enabled: false
indices.query.bool.max_clause_count: 4096
xpack.security.enabled: true
xpack.security.http.ssl.enabled: false
xpack.security.transport.ssl.enabled: false
EOF
  # The `elastic` user's password comes from the keystore's bootstrap.password (read on first start). The
  # keystore holds nothing else, so it is written afresh (a root run hands it to $RUN_USER afterwards).
  local keystore=(env ES_PATH_CONF="$DIR/config" ES_JAVA_HOME="$(java_home)" "$HOME_DIR/bin/elasticsearch-keystore")
  rm -f "$DIR/config/elasticsearch.keystore"
  "${keystore[@]}" create >/dev/null
  printf '%s' "$PASSWORD" | "${keystore[@]}" add --force --stdin bootstrap.password >/dev/null
}

# Elasticsearch refuses to run as root. As root, it runs as the system user $RUN_USER (created when missing)
# from a copy of the distribution under the services dir (the download cache may sit in root's 0700 home).
as_root() { [ "$(id -u)" -eq 0 ]; }
runtime_home() { if as_root; then echo "$SERVICES_DIR/elasticsearch-home-$VERSION"; else echo "$HOME_DIR"; fi; }

prepare_root_run() {
  getent passwd "$RUN_USER" >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
  local home stamp; home="$(runtime_home)"; stamp=".complete-$(plugin_hash)"
  if [ ! -f "$home/$stamp" ]; then
    rm -rf "$home"; cp -a "$HOME_DIR" "$home"
  fi
  chown -R "$RUN_USER:" "$DIR" "$home"
  chmod o+rx "$SERVICES_DIR"
}

launch() {
  local home; home="$(runtime_home)"
  local -a env=(ES_PATH_CONF="$DIR/config" ES_JAVA_HOME="$(java_home)" ES_JAVA_OPTS="${ES_JAVA_OPTS:-}")
  if as_root; then
    prepare_root_run
    setsid runuser -u "$RUN_USER" -- env "${env[@]}" "$home/bin/elasticsearch" -d -p "$PIDFILE"
  else
    setsid env "${env[@]}" "$home/bin/elasticsearch" -d -p "$PIDFILE"
  fi
}

up() {
  if status; then log "already up on $URL"; return 0; fi
  if pid_alive; then
    log "process $(cat "$PIDFILE") is starting; waiting"
  else
    fetch
    write_config
    rm -f "$PIDFILE"  # stale: its process is gone (killed, or the machine restarted)
    log "starting Elasticsearch $VERSION on $URL (heap $HEAP_MIN..$HEAP_MAX, user elastic, logs in $DIR/logs)"
    launch >"$DIR/logs/stdout.log" 2>&1 </dev/null \
      || { log "start failed; see $DIR/logs/stdout.log"; tail -20 "$DIR/logs/stdout.log" >&2; exit 1; }
  fi
  for _ in $(seq 180); do
    status && { log "up on $URL"; return 0; }
    [ -f "$PIDFILE" ] && ! pid_alive && { log "Elasticsearch exited; see $DIR/logs"; tail -30 "$DIR/logs/stdout.log" "$DIR/logs/freshrank-es-$PORT.log" >&2 2>/dev/null || true; exit 1; }
    sleep 1
  done
  log "not green/yellow after 180 s; see $DIR/logs"; exit 1
}

down() {
  pid_alive || { rm -f "$PIDFILE"; log "not running"; return 0; }
  local pid; pid="$(cat "$PIDFILE")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "stopped"; return 0; }; sleep 1; done
  log "still running after 60 s; killing $pid"; kill -9 "$pid" 2>/dev/null || true; rm -f "$PIDFILE"
}

case "${1:-status}" in
  up) up ;;
  down) down ;;
  status) if status; then echo "elasticsearch: up ($URL)"; else echo "elasticsearch: down ($URL)"; exit 1; fi ;;
  fetch) fetch ;;
  *) echo "usage: $0 up|down|status|fetch" >&2; exit 2 ;;
esac
