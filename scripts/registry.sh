#!/usr/bin/env bash
# Real Apicurio Registry 3.x (Confluent-compatible schema registry API at /apis/ccompat/v7) on
# loopback, in-memory storage (H2 in memory), for tests, CI and development. No Docker: the
# registry's Quarkus distribution comes from Maven Central (via scripts/registry/pom.xml) and is
# cached. Needs Java 21+ (the app is compiled for 21); a Temurin 25 in /usr/lib/jvm is preferred.
#
#   scripts/registry.sh up        start (idempotent) and wait until the ccompat API answers
#   scripts/registry.sh down      stop (SIGTERM, then SIGKILL) and delete its run dir
#   scripts/registry.sh status    exit 0 when running and the API answers
#   scripts/registry.sh logs [-f|N]
#   scripts/registry.sh fetch     only download and unpack into the cache
#
# Env: REGISTRY_PORT (18081), REGISTRY_MANAGEMENT_PORT (18082: /health, /metrics),
#      REGISTRY_VERSION (3.3.3), REGISTRY_HEAP (512m), REGISTRY_START_TIMEOUT (120 s),
#      REGISTRY_JAVA (java binary, 21+), TOURNIQUET_CACHE, TOURNIQUET_RUN (see scripts/lib.sh).
set -uo pipefail
# shellcheck disable=SC2034 # read by lib.sh
TQ_NAME=registry
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

REGISTRY_VERSION=${REGISTRY_VERSION:-3.3.3}
REGISTRY_PORT=${REGISTRY_PORT:-18081}
REGISTRY_MANAGEMENT_PORT=${REGISTRY_MANAGEMENT_PORT:-18082}
REGISTRY_HEAP=${REGISTRY_HEAP:-512m}
REGISTRY_START_TIMEOUT=${REGISTRY_START_TIMEOUT:-120}
HOST=127.0.0.1
URL="http://$HOST:$REGISTRY_PORT"
CCOMPAT_URL="$URL/apis/ccompat/v7"

HOME_DIR="$TQ_CACHE/apicurio-registry-$REGISTRY_VERSION"
APP_DIR="$HOME_DIR/quarkus-app"
RUN_DIR="$TQ_RUN/registry"
LOG="$RUN_DIR/registry.log"

java_bin() {
  [ -n "${JAVA_BIN:-}" ] && return 0
  local temurins=()
  while IFS= read -r c; do temurins+=("$c"); done < <(find /usr/lib/jvm -mindepth 3 -maxdepth 3 -path '*/temurin-*/bin/java' 2>/dev/null | sort -rV)
  JAVA_BIN=$(tq_find_java 21 "${REGISTRY_JAVA:-}" "${temurins[@]}") ||
    tq_die "Apicurio Registry $REGISTRY_VERSION needs Java 21 or newer; set REGISTRY_JAVA or JAVA_HOME"
}

fetch() {
  local stamp
  stamp="$REGISTRY_VERSION-$(tq_stamp "$TQ_SCRIPTS_DIR/registry/pom.xml")"
  if tq_cache_ok "$APP_DIR" "$stamp"; then return 0; fi
  tq_need_mvn
  command -v tar >/dev/null 2>&1 || tq_die "tar is needed"
  tq_log "fetching Apicurio Registry $REGISTRY_VERSION (~160 MB) from Maven Central into $HOME_DIR"
  rm -rf "$HOME_DIR"
  mkdir -p "$HOME_DIR/download" "$APP_DIR"
  tq_mvn -f "$TQ_SCRIPTS_DIR/registry/pom.xml" dependency:copy \
    -Dregistry.version="$REGISTRY_VERSION" -Dregistry.out="$HOME_DIR/download" ||
    tq_die "could not fetch io.apicurio:apicurio-registry-app:$REGISTRY_VERSION:tar.gz:all with Maven"
  tar -xzf "$HOME_DIR/download/apicurio-registry-app-all.tar.gz" -C "$APP_DIR" ||
    tq_die "could not unpack the registry archive"
  # the archive stays in ~/.m2; no need for a second copy
  rm -rf "$HOME_DIR/download"
  [ -f "$APP_DIR/quarkus-run.jar" ] || tq_die "no quarkus-run.jar in $APP_DIR"
  echo "$stamp" >"$APP_DIR/.complete"
}

ready() {
  curl -fsS -o /dev/null --max-time 5 "$CCOMPAT_URL/subjects" 2>/dev/null
}

up() {
  local t0=$SECONDS
  command -v curl >/dev/null 2>&1 || tq_die "curl is needed (Debian: apt-get install curl)"
  tq_lock registry
  if tq_already_up registry "$REGISTRY_START_TIMEOUT" "$LOG" ready; then
    echo "SCHEMA_REGISTRY_URL=$CCOMPAT_URL"
    return 0
  fi
  local p
  for p in "$REGISTRY_PORT" "$REGISTRY_MANAGEMENT_PORT"; do
    tq_need_free_port "$HOST" "$p" "REGISTRY_PORT / REGISTRY_MANAGEMENT_PORT"
  done
  fetch
  java_bin
  tq_remove_unused "$RUN_DIR" || tq_die "a process still uses $RUN_DIR but is not this run's recorded registry; stop it first"
  mkdir -p "$RUN_DIR/tmp"
  # Everything binds to 127.0.0.1. Storage: H2 in memory (lost on stop). Deletes are enabled so
  # tests can clean up subjects. OpenTelemetry stays off (its SDK is disabled by default).
  tq_spawn registry "$LOG" "$JAVA_BIN" -Dtourniquet.infra=registry \
    -Xms128m -Xmx"$REGISTRY_HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Djava.io.tmpdir="$RUN_DIR/tmp" \
    -Djava.util.logging.manager=org.jboss.logmanager.LogManager \
    -Dquarkus.http.host="$HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.management.host="$HOST" -Dquarkus.management.port="$REGISTRY_MANAGEMENT_PORT" \
    -Dquarkus.http.access-log.enabled=false \
    -Dquarkus.otel.sdk.disabled=true \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2 \
    -Dapicurio.datasource.url="jdbc:h2:mem:tourniquet_registry" \
    -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
    -Dapicurio.datasource.jdbc.max-size=20 \
    -Dapicurio.storage.snapshot.location="$RUN_DIR/tmp" -Dapicurio.import.work-dir="$RUN_DIR/tmp" \
    -Dapicurio.rest.deletion.group.enabled=true \
    -Dapicurio.rest.deletion.artifact.enabled=true \
    -Dapicurio.rest.deletion.artifact-version.enabled=true \
    -jar "$APP_DIR/quarkus-run.jar"
  tq_record_owner registry
  tq_wait_ready registry "$REGISTRY_START_TIMEOUT" "$LOG" ready || exit 1
  tq_log "Apicurio Registry $REGISTRY_VERSION up in $((SECONDS - t0))s (pid $(tq_running_pid registry), java $(tq_java_major "$JAVA_BIN"), logs $LOG)"
  echo "SCHEMA_REGISTRY_URL=$CCOMPAT_URL"
}

down() {
  tq_lock registry
  tq_may_stop registry || return 0
  tq_stop registry 30 || tq_die "the registry did not stop; its files are kept"
  # storage is in memory; the log stays for a post-mortem until the next `up`
  tq_remove_within "$RUN_DIR" "$RUN_DIR/tmp" || exit 1
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  up) up ;;
  down) down ;;
  status) tq_status registry "$CCOMPAT_URL" ready ;;
  logs) tq_logs "$LOG" "$@" ;;
  fetch) fetch && echo "$APP_DIR" ;;
  *)
    echo "usage: $0 up|down|status|logs [-f|N]|fetch" >&2
    exit 2
    ;;
esac
