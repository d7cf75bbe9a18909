#!/usr/bin/env bash
# moto in server mode: a local AWS API emulator (IAM, STS, ...) for the AWS provider's tests, from
# PyPI (`moto[server]`) into a cached virtualenv, run in the background on loopback only.
#
#   scripts/moto.sh fetch    create the virtualenv and install moto (idempotent); start nothing
#   scripts/moto.sh up       start (idempotent), wait until the server answers, print MOTO_URL=...
#   scripts/moto.sh down     SIGTERM to the process group, SIGKILL after a grace period; the run
#                            directory is removed only once the process is gone
#   scripts/moto.sh status   exit 0 and print the URL when up, exit 3 when not
#   scripts/moto.sh logs     print the server log (LINES=n for the tail; -f to follow)
#
# Environment:
#   MOTO_VERSION        moto release (default 5.2.5)
#   MOTO_PORT           HTTP port on 127.0.0.1 (default 15000)
#   MOTO_PYTHON         the python3 to build the virtualenv with (default: python3 on PATH, 3.9+)
#   MOTO_START_TIMEOUT  seconds to wait for readiness (default 60)
#   TOURNIQUET_CACHE    cache (default ~/.cache/tourniquet): moto-<version>/ holds the virtualenv
#   TOURNIQUET_RUN      run data (default /tmp/tourniquet-infra): moto/moto.pid, moto/moto.log
#   TQ_OWNER            who asks: `up` records it for the server it starts, `down` stops only that
#                       owner's (scripts/README.md, "Ownership")
set -euo pipefail
# shellcheck disable=SC2034 # read by lib.sh
TQ_NAME=moto
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

MOTO_VERSION=${MOTO_VERSION:-5.2.5}
MOTO_PORT=${MOTO_PORT:-15000}
MOTO_TIMEOUT=${MOTO_START_TIMEOUT:-60}
CACHE_DIR=$TQ_CACHE
RUN_ROOT=$TQ_RUN
VENV="$CACHE_DIR/moto-$MOTO_VERSION"
RUN_DIR="$RUN_ROOT/moto"
PID_FILE="$RUN_DIR/moto.pid"
LOG_FILE="$RUN_DIR/moto.log"
URL="http://127.0.0.1:$MOTO_PORT"


is_ready() {
  # moto's own management API answers once the server is serving.
  curl -fsS --max-time 3 "$URL/moto-api/data.json" >/dev/null 2>&1
}

# This run's moto: it runs this virtualenv's moto_server with this run directory as its working
# directory (python takes no marker flag). A stale pid file may name a recycled pid; a live server
# whose pid file was lost is found again by its working directory.
ours() {
  [ "$(readlink "/proc/$1/cwd" 2>/dev/null)" = "$RUN_DIR" ] &&
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$VENV/bin/"
}

running_pid() {
  local pid=""
  [ -f "$PID_FILE" ] && pid=$(cat "$PID_FILE" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ours "$pid"; then
    echo "$pid"
    return 0
  fi
  for pid in $(tq_users_of "$RUN_DIR"); do
    if ours "$pid"; then
      echo "$pid" >"$PID_FILE"
      echo "$pid"
      return 0
    fi
  done
  return 1
}

cmd_fetch() {
  if [ -x "$VENV/bin/moto_server" ] && [ -f "$VENV/.tourniquet-complete" ]; then return 0; fi
  local py=${MOTO_PYTHON:-python3}
  command -v "$py" >/dev/null 2>&1 || tq_die "python3 is required (Debian: apt-get install python3 python3-venv)"
  "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' || tq_die "$py is older than 3.9"
  mkdir -p "$CACHE_DIR"
  # The completion marker is written last: an interrupted install is removed and done again.
  rm -rf "$VENV"
  tq_log "creating $VENV with moto[server]==$MOTO_VERSION from PyPI"
  "$py" -m venv "$VENV" || { rm -rf "$VENV"; tq_die "python3 -m venv failed (Debian: apt-get install python3-venv)"; }
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >"$VENV/pip.log" 2>&1; then
    cat "$VENV/pip.log" >&2
    rm -rf "$VENV"
    tq_die "pip install moto[server]==$MOTO_VERSION failed"
  fi
  "$VENV/bin/python" -c 'import moto, flask' || tq_die "moto did not install completely"
  touch "$VENV/.tourniquet-complete"
}

cmd_up() {
  # Two concurrent `up` calls (parallel test files) must not start two servers on one port.
  tq_lock moto "$((MOTO_TIMEOUT + 300))"
  local pid
  if is_ready; then
    # one owner per server per run: a moto of another run (or anyone's) on our port is not ours
    running_pid >/dev/null || tq_die "something answers on $URL but it is not this run's moto ($RUN_DIR); set MOTO_PORT or TOURNIQUET_RUN"
    tq_log "already up"
    echo "MOTO_URL=$URL"
    return 0
  fi
  if pid=$(running_pid); then
    tq_log "process $pid is starting; waiting"
  else
    cmd_fetch
    mkdir -p "$RUN_DIR"
    tq_log "starting moto $MOTO_VERSION on $URL"
    (
      exec 9>&- # the server must not inherit (and so hold) the start lock
      cd "$RUN_DIR"
      # AWS managed policies (arn:aws:iam::aws:policy/AWSDenyAll, ...) exist as they do on AWS.
      export MOTO_IAM_LOAD_MANAGED_POLICIES=true
      exec setsid "$VENV/bin/python" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" \
        </dev/null >"$LOG_FILE" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$PID_FILE"
    tq_record_owner moto
  fi
  local start=$SECONDS
  while ! is_ready; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tq_log "moto exited before it was ready; last log lines:"
      tail -n 40 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      exit 1
    fi
    if [ $((SECONDS - start)) -ge "$MOTO_TIMEOUT" ]; then
      tq_log "not ready after ${MOTO_TIMEOUT}s; last log lines:"
      tail -n 40 "$LOG_FILE" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  tq_log "ready after $((SECONDS - start))s"
  echo "MOTO_URL=$URL"
}

cmd_down() {
  local pid
  tq_lock moto 120
  if running_pid >/dev/null && ! tq_may_stop moto; then return 0; fi
  if pid=$(running_pid); then
    tq_log "stopping process group $pid"
    # Its log and pid file are the only handle on it: keep them.
    tq_terminate moto "$pid" 10 group || tq_die "process $pid did not exit; $RUN_DIR left in place"
  elif is_ready; then
    tq_log "something answers on $URL but it is not this run's moto ($RUN_DIR); leaving it"
    return 0
  fi
  # the run data goes, but never from under a live process
  tq_remove_unused "$RUN_DIR" || tq_die "$RUN_DIR is still in use; not removed"
  rm -f "$(tq_ownerfile moto)"
  tq_log "down"
}

cmd_status() {
  local pid
  if is_ready; then
    if running_pid >/dev/null; then
      echo "up $URL"
      return 0
    fi
    echo "taken: $URL answers but is not this run's moto ($RUN_DIR)"
    return 4
  fi
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

locked_fetch() {
  tq_lock moto 600
  cmd_fetch
}

case "${1:-}" in
  fetch) locked_fetch ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "$@" ;;
  *) echo "usage: $0 fetch|up|down|status|logs [-f]" >&2; exit 2 ;;
esac
