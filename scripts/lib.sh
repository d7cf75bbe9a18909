# shellcheck shell=bash
# Shared helpers for scripts/kafka.sh, registry.sh, keycloak.sh and moto.sh. Source it; it sets no
# shell options.
#
#   TOURNIQUET_CACHE  downloaded servers (default ~/.cache/tourniquet); ~/.m2 caches the artifacts too
#   TOURNIQUET_RUN    pid files, logs and data dirs (default /tmp/tourniquet-infra)

# shellcheck disable=SC2034 # these are used by the scripts that source this file
TQ_SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034
TQ_CACHE=${TOURNIQUET_CACHE:-$HOME/.cache/tourniquet}
TQ_RUN=${TOURNIQUET_RUN:-/tmp/tourniquet-infra}

tq_log() { printf '[%s] %s\n' "${TQ_NAME:-infra}" "$*" >&2; }
tq_die() { printf '[%s] ERROR: %s\n' "${TQ_NAME:-infra}" "$*" >&2; exit 1; }

# Major version of a java binary ("17", "25"), or nothing when it does not run.
tq_java_major() {
  local v
  v=$("$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -n1)
  v=${v#1.}
  printf '%s' "${v%%.*}"
}

# tq_find_java MIN [CANDIDATE...]: print the first candidate java binary whose major version is
# >= MIN, trying the given candidates first, then $JAVA_HOME, `java` on PATH, then /usr/lib/jvm/*
# (newest first).
tq_find_java() {
  local min=$1; shift
  local c m
  local candidates=("$@")
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null 2>&1 && candidates+=("$(command -v java)")
  while IFS= read -r c; do candidates+=("$c"); done < <(find /usr/lib/jvm -mindepth 3 -maxdepth 3 -path '*/bin/java' 2>/dev/null | sort -rV)
  for c in "${candidates[@]}"; do
    if [ -z "$c" ] || [ ! -x "$c" ]; then continue; fi
    m=$(tq_java_major "$c")
    if [ -n "$m" ] && [ "$m" -ge "$min" ] 2>/dev/null; then printf '%s' "$c"; return 0; fi
  done
  return 1
}

# tq_stamp FILE...: a short fingerprint of the given files (the poms), stored in a cache dir's
# .complete marker so that editing a pom re-fetches instead of reusing a stale cache.
tq_stamp() {
  cat "$@" | cksum | cut -d' ' -f1
}

# tq_cache_ok DIR STAMP: the cache DIR was completely fetched with the same STAMP.
tq_cache_ok() {
  [ -f "$1/.complete" ] && [ "$(cat "$1/.complete")" = "$2" ]
}

tq_need_mvn() {
  command -v mvn >/dev/null 2>&1 || tq_die "mvn (Apache Maven) is needed to fetch the server from Maven Central; install it (Debian: apt-get install maven)"
}

# Run Maven quietly; show its output only when it fails.
tq_mvn() {
  local out rc
  out=$(mktemp)
  mvn -B -q "$@" >"$out" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    tail -n 60 "$out" >&2
    rm -f "$out"
    return $rc
  fi
  rm -f "$out"
}

# True when something accepts TCP connections on HOST PORT.
tq_port_open() {
  (exec 3<>"/dev/tcp/$1/$2") >/dev/null 2>&1
}

tq_pidfile() { printf '%s/%s.pid' "$TQ_RUN" "$1"; }

# Ownership, one owner per server per run: the `up` that starts a server records who asked for it
# (TQ_OWNER, e.g. a test process's token; "manual" otherwise) in $TQ_RUN/NAME.owner. A `down` that
# names an owner (TQ_OWNER set) stops the server only when it is that owner's; without TQ_OWNER
# (an operator, CI teardown) it stops it whoever started it.
tq_ownerfile() { printf '%s/%s.owner' "$TQ_RUN" "$1"; }

tq_record_owner() {
  printf '%s\n' "${TQ_OWNER:-manual}" >"$(tq_ownerfile "$1")"
}

# tq_may_stop NAME: 0 when this `down` may stop NAME (no TQ_OWNER given, or it is the recorded owner).
tq_may_stop() {
  local f owner
  [ -n "${TQ_OWNER:-}" ] || return 0
  f=$(tq_ownerfile "$1")
  owner=$(cat "$f" 2>/dev/null || true)
  if [ "$owner" = "$TQ_OWNER" ]; then return 0; fi
  tq_log "$1 in $TQ_RUN belongs to ${owner:-an unrecorded owner}, not to $TQ_OWNER: leaving it running"
  return 1
}

# tq_users_of PATH: pids of live processes (other than this script) whose command line names PATH
# or whose working directory is PATH or below it (a server that takes no path argument, such as moto,
# runs in its run directory). A run directory is never removed while one of these exists.
tq_users_of() {
  local path=${1%/} d pid cmd cwd
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" = "$$" ] && continue
    [ "$pid" = "${BASHPID:-$$}" ] && continue
    cmd=$({ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null) || continue
    cwd=$(readlink "$d/cwd" 2>/dev/null || true)
    # the path itself, or a file under it; not a sibling that merely starts with the same name
    case "$cmd" in
      *"$path/"* | *"$path "* | *"$path;"*) printf '%s\n' "$pid"; continue ;;
    esac
    case "$cwd" in
      "$path" | "$path/"*) printf '%s\n' "$pid" ;;
    esac
  done
}

# tq_remove_unused PATH...: rm -rf each PATH unless a live process still names it (then say so and
# return 1): a server's data must never disappear from under it.
tq_remove_unused() {
  local p users rc=0
  for p in "$@"; do
    [ -e "$p" ] || continue
    users=$(tq_users_of "$p" | tr '\n' ' ')
    if [ -n "$users" ]; then
      tq_log "not removing $p: still used by pid(s) ${users% }"
      rc=1
      continue
    fi
    rm -rf "$p"
  done
  return $rc
}

# tq_remove_within DIR PATH...: rm -rf the PATHs (inside DIR) unless a live process names DIR: a
# server names its run directory on its command line, not every file it keeps there.
tq_remove_within() {
  local dir=$1 users; shift
  users=$(tq_users_of "$dir" | tr '\n' ' ')
  if [ -n "$users" ]; then
    tq_log "not removing anything in $dir: still used by pid(s) ${users% }"
    return 1
  fi
  rm -rf "$@"
}

# tq_lock NAME [WAIT_S]: serialise up/down of NAME in this run (fd 9; a started server closes it),
# waiting at most WAIT_S seconds (default 600) for another caller to finish.
tq_lock() {
  mkdir -p "$TQ_RUN"
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$TQ_RUN/$1.lock"
  flock -w "${2:-600}" 9 || tq_die "could not take $TQ_RUN/$1.lock"
}

# Print the pid of service NAME: the process of this run that carries our marker (-Dtourniquet.infra=NAME)
# and this run's directory on its command line. The pid file names it; when the file is gone or stale
# (a recycled pid) but the run's server still lives, it is found by that command line and recorded again,
# so a lost pid file never makes a live server look absent.
tq_is_ours() {
  local cmd
  cmd=$({ tr '\0' ' ' <"/proc/$2/cmdline"; } 2>/dev/null) || return 1
  case "$cmd" in
    *"-Dtourniquet.infra=$1 "*"$TQ_RUN/"*) return 0 ;;
  esac
  return 1
}

tq_running_pid() {
  local name=$1 f pid
  f=$(tq_pidfile "$name")
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && tq_is_ours "$name" "$pid"; then
    printf '%s' "$pid"
    return 0
  fi
  rm -f "$f"
  for pid in $(tq_users_of "$TQ_RUN"); do
    if tq_is_ours "$name" "$pid"; then
      printf '%s' "$pid" >"$f"
      printf '%s' "$pid"
      return 0
    fi
  done
  return 1
}

# tq_spawn NAME LOGFILE CMD...: start CMD detached (own session, stdin closed, output to LOGFILE)
# and record its pid in the pid file. CMD should carry -Dtourniquet.infra=NAME.
tq_spawn() {
  local name=$1 log=$2; shift 2
  local f i
  f=$(tq_pidfile "$name")
  mkdir -p "$TQ_RUN"
  rm -f "$f"
  # shellcheck disable=SC2016 # $$ and $@ expand in the child shell
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$f" "$@" </dev/null >>"$log" 2>&1 9>&- &
  for i in $(seq 1 50); do
    [ -s "$f" ] && return 0
    sleep 0.1
  done
  tq_die "could not start $name (no pid file $f)"
}

# tq_wait_ready NAME TIMEOUT_S LOGFILE CHECK_CMD...: poll CHECK_CMD every half second until it
# succeeds. Fails (with the log tail) when the process dies or TIMEOUT_S elapses.
tq_wait_ready() {
  local name=$1 timeout=$2 log=$3; shift 3
  local start=$SECONDS
  while true; do
    if "$@"; then return 0; fi
    if ! tq_running_pid "$name" >/dev/null; then
      printf '[%s] ERROR: %s exited during startup; last lines of %s:\n' "$name" "$name" "$log" >&2
      tail -n 40 "$log" >&2
      return 1
    fi
    if [ $((SECONDS - start)) -ge "$timeout" ]; then
      printf '[%s] ERROR: %s not ready after %ss; last lines of %s:\n' "$name" "$name" "$timeout" "$log" >&2
      tail -n 40 "$log" >&2
      tq_stop "$name" 10
      return 1
    fi
    sleep 0.5
  done
}

# tq_already_up NAME TIMEOUT_S LOGFILE CHECK_CMD...: for an idempotent `up`. Returns 0 (and says so)
# when NAME is already running and CHECK_CMD succeeds within TIMEOUT_S; exits the script with 1 when it
# runs but does not get ready; returns 1 when it is not running.
tq_already_up() {
  local name=$1 pid
  pid=$(tq_running_pid "$name") || return 1
  tq_wait_ready "$@" || exit 1
  tq_log "already running (pid $pid)"
}

# tq_need_free_port HOST PORT SETTING: die unless HOST:PORT is free (SETTING names the variable to change).
tq_need_free_port() {
  if tq_port_open "$1" "$2"; then
    tq_die "port $1:$2 is taken by a process this script did not start (set $3 or stop it)"
  fi
}

# tq_status NAME WHERE CHECK_CMD...: `status`: exit code 0 and "NAME: running (pid …) at WHERE" when
# NAME runs and CHECK_CMD succeeds; otherwise "NAME: not running" and 1.
tq_status() {
  local name=$1 where=$2 pid; shift 2
  if pid=$(tq_running_pid "$name") && "$@"; then
    echo "$name: running (pid $pid) at $where"
    return 0
  fi
  echo "$name: not running"
  return 1
}

# tq_terminate NAME PID GRACE_S [group]: SIGTERM PID (with `group`, its whole process group: a server
# started with setsid leads one, and its children go with it), SIGKILL after GRACE_S. Returns 1 when
# the process is still alive after the SIGKILL.
tq_terminate() {
  local name=$1 pid=$2 grace=$3 target=$2 i
  [ "${4:-}" = group ] && target="-$2"
  kill -TERM -- "$target" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 $((grace * 5))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  tq_log "$name (pid $pid) still alive after ${grace}s; sending SIGKILL"
  kill -KILL -- "$target" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 25); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  tq_log "$name (pid $pid) survived SIGKILL"
  return 1
}

# tq_stop NAME [GRACE_S]: stop the service (tq_terminate, default grace 30 s), remove pid and owner
# files. Returns 1 (keeping them) when the process is still alive after the SIGKILL.
tq_stop() {
  local name=$1 grace=${2:-30} pid
  if pid=$(tq_running_pid "$name"); then
    if ! tq_terminate "$name" "$pid" "$grace"; then
      tq_log "$name (pid $pid): its files are kept"
      return 1
    fi
    tq_log "stopped $name (pid $pid)"
    rm -f "$(tq_pidfile "$name")" "$(tq_ownerfile "$name")"
  else
    tq_log "$name is not running"
  fi
}

# tq_logs LOGFILE [-f]: print the log tail, or follow it with -f.
tq_logs() {
  local log=$1; shift
  [ -f "$log" ] || tq_die "no log yet at $log"
  if [ "${1:-}" = "-f" ]; then exec tail -n 100 -F "$log"; fi
  tail -n "${1:-200}" "$log"
}
