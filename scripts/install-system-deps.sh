#!/usr/bin/env bash
# Debian packages the servers and browser tests need. Idempotent; installs only what is missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || need+=(postgresql)
command -v ss >/dev/null || need+=(iproute2)  # services.sh names the process that holds a port
command -v runuser >/dev/null || need+=(util-linux)
command -v chromium >/dev/null || need+=(chromium)
command -v mvn >/dev/null || need+=(maven)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)  # builds Elasticsearch's analysis plugin
command -v curl >/dev/null || need+=(curl)
command -v unzip >/dev/null || need+=(unzip)
command -v socat >/dev/null || need+=(socat)  # a relay the hung-server tests pause (SIGSTOP)
command -v wrk >/dev/null || need+=(wrk)  # the API benches' load generator (bench/load.py)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
