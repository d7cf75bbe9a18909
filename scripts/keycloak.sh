#!/usr/bin/env bash
# Keycloak for development and tests: a real server from the official Quarkus distribution,
# fetched once from Maven Central, cached, and run in the background on loopback only.
#
#   scripts/keycloak.sh up       start (idempotent), wait until /realms/master answers, print the URL
#   scripts/keycloak.sh down     SIGTERM, then SIGKILL after a grace period; wipe the run data (never
#                                while a process still uses it; with TQ_OWNER set, only the owner's server)
#   scripts/keycloak.sh status   exit 0 and print the URL when up, exit 3 when not
#   scripts/keycloak.sh logs     print the server log (LINES=n for the tail; -f to follow)
#
# Environment:
#   KEYCLOAK_VERSION   distribution version (default 26.7.3; 26.4.x-26.7.x are served)
#   KEYCLOAK_PORT      HTTP port (default 18080); KEYCLOAK_MGMT_PORT health/management port (default 19000)
#   KEYCLOAK_ADMIN_USER / KEYCLOAK_ADMIN_PASSWORD  bootstrap admin on the master realm (admin/admin)
#   KEYCLOAK_START_TIMEOUT  seconds to wait for readiness (default 180)
#   KEYCLOAK_JAVA_HOME  the JDK to run on (default: Temurin 25 if present, else 21, else 17)
#   TOURNIQUET_CACHE   download/unpack cache (default ~/.cache/tourniquet)
#   TOURNIQUET_RUN     run data: pid, log, H2 database (default /tmp/tourniquet-infra)
#   TQ_OWNER           who asks: `up` records it for the server it starts, `down` stops only that owner's
set -euo pipefail
# shellcheck disable=SC2034 # read by lib.sh
TQ_NAME=keycloak
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

KC_VERSION=${KEYCLOAK_VERSION:-26.7.3}
KC_PORT=${KEYCLOAK_PORT:-18080}
KC_MGMT_PORT=${KEYCLOAK_MGMT_PORT:-19000}
KC_ADMIN_USER=${KEYCLOAK_ADMIN_USER:-admin}
KC_ADMIN_PASSWORD=${KEYCLOAK_ADMIN_PASSWORD:-admin}
KC_TIMEOUT=${KEYCLOAK_START_TIMEOUT:-180}
CACHE_DIR=$TQ_CACHE
RUN_ROOT=$TQ_RUN
KC_HOME="$CACHE_DIR/keycloak-$KC_VERSION"
RUN_DIR="$RUN_ROOT/keycloak"
PID_FILE="$RUN_DIR/keycloak.pid"
LOG_FILE="$RUN_DIR/keycloak.log"
URL="http://127.0.0.1:$KC_PORT"


# The JDK: Keycloak 26 supports OpenJDK 17, 21 and 25 and recommends the newest.
java_major() { "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
pick_java() {
  local candidates=()
  [ -n "${KEYCLOAK_JAVA_HOME:-}" ] && candidates+=("$KEYCLOAK_JAVA_HOME")
  candidates+=(/usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-25-openjdk-amd64 /usr/lib/jvm/temurin-21-jdk-amd64
    /usr/lib/jvm/java-21-openjdk-amd64)
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  candidates+=(/usr/lib/jvm/java-17-openjdk-amd64)
  if command -v java >/dev/null 2>&1; then
    candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
  fi
  local c m
  for c in "${candidates[@]}"; do
    [ -x "$c/bin/java" ] || continue
    m=$(java_major "$c")
    case "$m" in 17 | 21 | 25) echo "$c"; return 0 ;; esac
  done
  return 1
}

is_ready() {
  curl -fsS --max-time 3 "$URL/realms/master" 2>/dev/null | grep -q '"realm":"master"'
}

# This run's Keycloak: its command line names this run directory (the H2 database lives there), and
# it leads its own process group (started with setsid; kc.sh first runs a build step in a child JVM,
# then execs the server, which keeps kc.sh's pid). A stale pid file may name a recycled pid: only a
# process naming $RUN_DIR is claimed; a live one whose pid file was lost is found again that way.
owns_run_dir() {
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$RUN_DIR/" &&
    [ "$(ps -o pgid= -p "$1" 2>/dev/null | tr -d ' ')" = "$1" ]
}

running_pid() {
  local pid=""
  [ -f "$PID_FILE" ] && pid=$(cat "$PID_FILE" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && owns_run_dir "$pid"; then
    echo "$pid"
    return 0
  fi
  for pid in $(tq_users_of "$RUN_DIR"); do
    if owns_run_dir "$pid"; then
      mkdir -p "$RUN_DIR"
      echo "$pid" >"$PID_FILE"
      echo "$pid"
      return 0
    fi
  done
  return 1
}

fetch_dist() {
  if [ -x "$KC_HOME/bin/kc.sh" ] && [ -f "$KC_HOME/.tourniquet-complete" ]; then return 0; fi
  command -v unzip >/dev/null 2>&1 || tq_die "unzip is required (apt-get install unzip)"
  mkdir -p "$CACHE_DIR"
  local tmp; tmp=$(mktemp -d "$CACHE_DIR/.keycloak-$KC_VERSION.XXXXXX")
  local zip="$CACHE_DIR/keycloak-quarkus-dist-$KC_VERSION.zip"
  if [ ! -s "$zip" ]; then
    command -v mvn >/dev/null 2>&1 || tq_die "mvn is required to fetch org.keycloak:keycloak-quarkus-dist from Maven Central"
    tq_log "fetching org.keycloak:keycloak-quarkus-dist:$KC_VERSION:zip from Maven Central"
    mvn -q -B dependency:copy "-Dartifact=org.keycloak:keycloak-quarkus-dist:$KC_VERSION:zip" \
      "-DoutputDirectory=$tmp" >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; rm -rf "$tmp"; tq_die "download failed"; }
    mv "$tmp/keycloak-quarkus-dist-$KC_VERSION.zip" "$zip"
  fi
  tq_log "unpacking into $KC_HOME"
  unzip -q "$zip" -d "$tmp" || { rm -rf "$tmp"; tq_die "unzip failed"; }
  rm -rf "$KC_HOME"
  mv "$tmp/keycloak-$KC_VERSION" "$KC_HOME"
  rm -rf "$tmp"
  # The zip is only needed to unpack again; the unpacked tree is what later runs use.
  rm -f "$zip"
  touch "$KC_HOME/.tourniquet-complete"
}

cmd_up() {
  # Two concurrent `up` calls (parallel test files) must not start two servers on one port.
  tq_lock keycloak "$((KC_TIMEOUT + 120))"
  local pid
  if is_ready; then
    # one owner per server per run: a Keycloak of another run (or anyone's) on our port is not ours
    running_pid >/dev/null ||
      tq_die "something answers on $URL but it is not this run's Keycloak ($RUN_DIR); set KEYCLOAK_PORT/KEYCLOAK_MGMT_PORT or TOURNIQUET_RUN"
    tq_log "already up"
    echo "$URL"
    return 0
  fi
  if pid=$(running_pid); then
    tq_log "process $pid is starting; waiting"
  else
    fetch_dist
    local jh; jh=$(pick_java) || tq_die "no JDK 17, 21 or 25 found (set KEYCLOAK_JAVA_HOME)"
    for port in "$KC_PORT" "$KC_MGMT_PORT"; do
      if tq_port_open 127.0.0.1 "$port"; then
        tq_die "port $port is taken by a process this run did not start (set KEYCLOAK_PORT/KEYCLOAK_MGMT_PORT)"
      fi
    done
    mkdir -p "$RUN_DIR/h2"
    tq_log "starting Keycloak $KC_VERSION on $URL with $("$jh/bin/java" -version 2>&1 | head -1) ($jh)"
    # start-dev keeps its H2 database under the dist's data/ by default; --db-url puts it in the
    # run directory instead so that `down` can wipe it and the cached dist stays pristine.
    (
      exec 9>&- # the server must not inherit (and so hold) the start lock
      cd "$RUN_DIR"
      export JAVA_HOME="$jh"
      export PATH="$jh/bin:$PATH"
      export KC_BOOTSTRAP_ADMIN_USERNAME="$KC_ADMIN_USER" KC_BOOTSTRAP_ADMIN_PASSWORD="$KC_ADMIN_PASSWORD"
      # The transaction manager's object store also defaults to the dist's data/.
      export JAVA_OPTS_APPEND="${JAVA_OPTS_APPEND:-} -Dquarkus.transaction-manager.object-store.directory=$RUN_DIR/transaction-logs"
      exec setsid "$KC_HOME/bin/kc.sh" start-dev \
        --http-port "$KC_PORT" --http-host 127.0.0.1 \
        --http-management-port "$KC_MGMT_PORT" --http-management-host 127.0.0.1 \
        --health-enabled true \
        --db dev-file --db-url "jdbc:h2:file:$RUN_DIR/h2/keycloakdb;NON_KEYWORDS=VALUE" \
        --cache local \
        </dev/null >"$LOG_FILE" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$PID_FILE"
    tq_record_owner keycloak
  fi
  local start=$SECONDS
  while ! is_ready; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tq_log "Keycloak exited before it was ready; last log lines:"
      tail -n 60 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      exit 1
    fi
    if [ $((SECONDS - start)) -ge "$KC_TIMEOUT" ]; then
      tq_log "not ready after ${KC_TIMEOUT}s; last log lines:"
      tail -n 60 "$LOG_FILE" >&2 || true
      exit 1
    fi
    sleep 1
  done
  tq_log "ready after $((SECONDS - start))s (admin: $KC_ADMIN_USER)"
  echo "$URL"
}

cmd_down() {
  local pid
  tq_lock keycloak 300
  if running_pid >/dev/null && ! tq_may_stop keycloak; then return 0; fi
  if pid=$(running_pid); then
    tq_log "stopping process group $pid"
    tq_terminate keycloak "$pid" 30 group || tq_die "Keycloak (pid $pid) survived SIGKILL; $RUN_DIR is kept"
  elif is_ready; then
    tq_log "something answers on $URL but it is not this run's Keycloak ($RUN_DIR); leaving it"
  fi
  # the run data goes, but never from under a live process
  tq_remove_unused "$RUN_DIR" || tq_die "$RUN_DIR is still in use; not removed"
  rm -f "$(tq_ownerfile keycloak)"
  tq_log "down"
}

cmd_status() {
  if is_ready; then
    if running_pid >/dev/null; then
      echo "up $URL"
      return 0
    fi
    echo "taken: $URL answers but is not this run's Keycloak ($RUN_DIR)"
    return 4
  fi
  local pid
  if pid=$(running_pid); then
    echo "starting (pid $pid) $URL"
    return 3
  fi
  echo "down"
  return 3
}

cmd_logs() {
  [ -f "$LOG_FILE" ] || tq_die "no log at $LOG_FILE"
  if [ "${1:-}" = "-f" ]; then exec tail -n "${LINES:-200}" -f "$LOG_FILE"; fi
  tail -n "${LINES:-200}" "$LOG_FILE"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "$@" ;;
  *) echo "usage: $0 up|down|status|logs [-f]" >&2; exit 2 ;;
esac
