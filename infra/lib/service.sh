# Helpers shared by the scripts that run a local service (infra/kafka/kafka.sh,
# infra/postgres/postgres.sh, infra/redis/redis.sh, infra/schema-registry/registry.sh).
# Sourced, not run. The sourcing script defines log() and die(); the functions below use its
# DATA_DIR, LOCK_DIR, START_TIMEOUT and STOP_TIMEOUT, and stop_process its running_pid() and
# PID_FILE.

# $1 made absolute (against $PWD) without a trailing slash: a data directory ends up in the
# server's configuration and identifies its process.
absolute_dir() {
  local dir="$1"
  [[ "${dir}" == /* ]] || dir="${PWD}/${dir}"
  echo "${dir%/}"
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Dies when port $1 is taken by another process; $2 names the variable that moves it.
require_free_port() {
  if port_open "$1"; then
    die "port $1 is already in use by another process (set $2 or stop it)"
  fi
}

# Prints the pid on the first line of the pid file $1 when it names a live process whose
# command line contains $2 (a guard against a recycled pid; no guard when $2 is empty).
live_pid() {
  local pid_file="$1" pattern="${2:-}" pid
  [[ -f "${pid_file}" ]] || return 1
  pid="$(head -n 1 "${pid_file}" 2>/dev/null || true)"
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  kill -0 "${pid}" 2>/dev/null || return 1
  if [[ -n "${pattern}" && -r "/proc/${pid}/cmdline" ]]; then
    tr '\0' ' ' < "/proc/${pid}/cmdline" | grep -q -- "${pattern}" || return 1
  fi
  echo "${pid}"
}

# One start or stop at a time. mkdir is atomic, so the directory is the lock; it records its
# holder's pid so a lock left by a killed process is recognised and taken over. Released when
# the script exits.
acquire_lock() {
  local deadline=$((SECONDS + START_TIMEOUT + 60)) holder
  mkdir -p "$(dirname "${LOCK_DIR}")"
  until mkdir "${LOCK_DIR}" 2>/dev/null; do
    holder="$(cat "${LOCK_DIR}/pid" 2>/dev/null || true)"
    if [[ -n "${holder}" ]] && ! kill -0 "${holder}" 2>/dev/null; then
      log "removing stale lock of dead process ${holder}"
      rm -rf "${LOCK_DIR}"
      continue
    fi
    (( SECONDS < deadline )) || die "timed out waiting for lock ${LOCK_DIR} (held by ${holder:-?})"
    sleep 0.1
  done
  echo $$ > "${LOCK_DIR}/pid"
  trap release_lock EXIT
}

release_lock() {
  if [[ "$(cat "${LOCK_DIR}/pid" 2>/dev/null || true)" == "$$" ]]; then
    rm -rf "${LOCK_DIR}"
  fi
}

# Waits for a starting server: polls the command $2 (eval'd: ready) every $5 seconds for at
# most START_TIMEOUT seconds. After the first $4 seconds the command $3 (eval'd: the process
# is alive) must hold too, or the server counts as exited. On either failure prints the last
# lines of the files after $5 and exits 1. $1 names the server in the messages.
wait_ready() {
  local what="$1" ready="$2" alive="$3" grace="$4" poll="$5" file
  shift 5
  local deadline=$((SECONDS + START_TIMEOUT)) started=$SECONDS
  until eval "${ready}"; do
    if (( SECONDS - started >= grace )) && ! eval "${alive}"; then
      log "${what} exited during start; last lines of $*:"
      for file in "$@"; do tail -n 40 "${file}" >&2 2>/dev/null || true; done
      exit 1
    fi
    if (( SECONDS >= deadline )); then
      log "${what} not ready after ${START_TIMEOUT}s; last lines of $*:"
      for file in "$@"; do tail -n 40 "${file}" >&2 2>/dev/null || true; done
      exit 1
    fi
    sleep "${poll}"
  done
}

# `stop` for a server that exits on SIGTERM: under the lock, SIGTERM to running_pid, SIGKILL
# after STOP_TIMEOUT seconds, pid file removed. $1 names the server in the messages.
stop_process() {
  local what="$1" pid
  mkdir -p "$(dirname "${DATA_DIR}")"
  acquire_lock
  if ! pid="$(running_pid)"; then
    rm -f "${PID_FILE}"
    log "not running"
    return 0
  fi
  log "stopping ${what} (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "${pid}" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
      log "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "${pid}" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "${PID_FILE}"
  log "stopped"
}
