# Shared by scripts/opensearch.sh and scripts/elasticsearch.sh (sourced, not run): one single-node server
# from a cached Maven Central zip, daemonised with setsid, run as a system user when invoked as root.
#
# The sourcing script sets: NAME (opensearch|elasticsearch), TITLE, VERSION, PORT, URL, DIR, PIDFILE,
# SERVICES_DIR, DOWNLOAD_CACHE, ARTIFACT, ZIP, HOME_DIR, RUN_USER, HEAP_MIN, HEAP_MAX, START_SECONDS,
# SERVER_LOG (its own log file under $DIR/logs), BIN (the start script under bin/), and defines:
#   health              print the cluster health JSON (fails when down)
#   java_home           the JAVA_HOME to run with
#   assemble DIST       complete an unpacked distribution (modules, plugins)
#   complete_stamp      the file name marking a complete distribution (changes when `assemble` would)
#   write_config        the node's config files under $DIR/config
#   launch_env          print the launch environment, one VAR=value a line
# then calls `node_main "$@"`.

log() { echo "[$NAME] $*" >&2; }

pid_alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

status() { health | grep -Eq '"status":"(green|yellow)"'; }

fetch() {
  [ -f "$HOME_DIR/$(complete_stamp)" ] && return 0
  if [ ! -s "$ZIP" ]; then
    command -v mvn >/dev/null || { log "Maven (mvn) is needed once to download $TITLE $VERSION: apt-get install maven"; exit 1; }
    log "downloading $ARTIFACT from Maven Central into $DOWNLOAD_CACHE"
    mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$DOWNLOAD_CACHE" >&2
  fi
  log "unpacking $ZIP"
  local tmp; tmp="$(mktemp -d "$DOWNLOAD_CACHE/$NAME-unpack.XXXXXX")"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$ZIP" "$tmp"
  chmod +x "$tmp/$NAME-$VERSION"/bin/* "$tmp/$NAME-$VERSION"/lib/*/bin/* 2>/dev/null || true
  assemble "$tmp/$NAME-$VERSION"
  rm -rf "$HOME_DIR"; mv "$tmp/$NAME-$VERSION" "$HOME_DIR"; rm -rf "$tmp"
  touch "$HOME_DIR/$(complete_stamp)"
}

write_jvm_options() {  # write_jvm_options [EXTRA_OPTION ...]
  mkdir -p "$DIR/data" "$DIR/logs" "$DIR/config" "$DIR/tmp"
  # The config dir is per instance: the cached distribution stays read-only.
  cp -n "$HOME_DIR"/config/log4j2.properties "$DIR/config/" 2>/dev/null || true
  {
    printf '%s\n' "-Xms$HEAP_MIN" "-Xmx$HEAP_MAX" "-XX:+UseG1GC" "-Djava.io.tmpdir=$DIR/tmp" \
      "-XX:+HeapDumpOnOutOfMemoryError" "$@" "-XX:HeapDumpPath=$DIR/logs" \
      "-XX:ErrorFile=$DIR/logs/hs_err_pid%p.log" "-Xlog:disable"
  } >"$DIR/config/jvm.options"
}

# Neither server runs as root. As root, it runs as the system user $RUN_USER (created when missing) from a
# copy of the distribution under the services dir (the download cache may sit in root's 0700 home).
as_root() { [ "$(id -u)" -eq 0 ]; }
runtime_home() { if as_root; then echo "$SERVICES_DIR/$NAME-home-$VERSION"; else echo "$HOME_DIR"; fi; }

prepare_root_run() {
  getent passwd "$RUN_USER" >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
  local home; home="$(runtime_home)"
  if [ ! -f "$home/$(complete_stamp)" ]; then
    rm -rf "$home"; cp -a "$HOME_DIR" "$home"
  fi
  chown -R "$RUN_USER:" "$DIR" "$home"
  chmod o+rx "$SERVICES_DIR" "$home"
}

launch() {
  local home; home="$(runtime_home)"
  local -a env; mapfile -t env < <(launch_env)
  if as_root; then
    prepare_root_run
    setsid runuser -u "$RUN_USER" -- env "${env[@]}" "$home/bin/$BIN" -d -p "$PIDFILE"
  else
    setsid env "${env[@]}" "$home/bin/$BIN" -d -p "$PIDFILE"
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
    log "starting $TITLE $VERSION on $URL (heap $HEAP_MIN..$HEAP_MAX, logs in $DIR/logs)"
    launch >"$DIR/logs/stdout.log" 2>&1 </dev/null \
      || { log "start failed; see $DIR/logs/stdout.log"; tail -20 "$DIR/logs/stdout.log" >&2; exit 1; }
  fi
  for _ in $(seq "$START_SECONDS"); do
    status && { log "up on $URL"; return 0; }
    # The pid file appears once the JVM has bootstrapped; a pid file whose process is gone means it died.
    [ -f "$PIDFILE" ] && ! pid_alive && { log "$TITLE exited; see $DIR/logs"; tail -30 "$DIR/logs/stdout.log" "$SERVER_LOG" >&2 2>/dev/null || true; exit 1; }
    sleep 1
  done
  log "not green/yellow after $START_SECONDS s; see $DIR/logs"; exit 1
}

down() {
  pid_alive || { rm -f "$PIDFILE"; log "not running"; return 0; }
  local pid; pid="$(cat "$PIDFILE")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "stopped"; return 0; }; sleep 1; done
  log "still running after 60 s; killing $pid"; kill -9 "$pid" 2>/dev/null || true; rm -f "$PIDFILE"
}

node_main() {
  case "${1:-status}" in
    up) up ;;
    down) down ;;
    status) if status; then echo "$NAME: up ($URL)"; else echo "$NAME: down ($URL)"; exit 1; fi ;;
    fetch) fetch ;;
    *) echo "usage: $0 up|down|status|fetch" >&2; exit 2 ;;
  esac
}
