#!/usr/bin/env bash
# Download, once, the Flink SQL Kafka connector jar that matches the PyFlink installed in .venv-flink,
# from Maven Central into $FRESHRANK_DOWNLOAD_CACHE/flink (the trend job's JVM has it on its classpath).
# Usage: scripts/flink-jars.sh [path/to/flink-venv]    Prints the jar's path on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${1:-${FRESHRANK_FLINK_VENV:-$root/.venv-flink}}"
cache="${FRESHRANK_DOWNLOAD_CACHE:-$HOME/.cache/freshrank}/flink"
log() { echo "[flink-jars] $*" >&2; }

flink_version="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-flink"))')" \
  || { log "no PyFlink in $venv: run 'make flink-venv' first"; exit 1; }
series="$(echo "$flink_version" | cut -d. -f1,2)"   # 2.0.2 -> 2.0

# The connector is released separately as <connector version>-<flink series>; pick the newest for our series.
connector="${FRESHRANK_FLINK_KAFKA_CONNECTOR_VERSION:-}"
if [ -z "$connector" ]; then
  existing="$(ls "$cache"/flink-sql-connector-kafka-*-"$series".jar 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -n "$existing" ]; then echo "$existing"; exit 0; fi
  metadata_url="https://repo1.maven.org/maven2/org/apache/flink/flink-sql-connector-kafka/maven-metadata.xml"
  connector="$(curl -fsSL --retry 3 "$metadata_url" | sed -n 's:.*<version>\(.*\)</version>.*:\1:p' \
    | grep -E -- "-${series//./\\.}\$" | sort -V | tail -n1 || true)"
  [ -n "$connector" ] || { log "no flink-sql-connector-kafka for Flink $series on Maven Central"; exit 1; }
fi

jar="$cache/flink-sql-connector-kafka-$connector.jar"
if [ ! -s "$jar" ]; then
  command -v mvn >/dev/null || { log "Maven (mvn) is needed once to download the connector: apt-get install maven"; exit 1; }
  log "downloading org.apache.flink:flink-sql-connector-kafka:$connector (Flink $flink_version) into $cache"
  mkdir -p "$cache"
  mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="org.apache.flink:flink-sql-connector-kafka:$connector" \
    -DoutputDirectory="$cache" >&2
fi
echo "$jar"
