#!/usr/bin/env bash
# A real PostgreSQL server for tests and CI on machines without Docker, run from the machine's
# own PostgreSQL binaries (Debian: `apt-get install postgresql`, which puts them under
# /usr/lib/postgresql/<major>/bin). Like infra/kafka/kafka.sh: no download, no container.
#
# Usage: infra/postgres/postgres.sh start|stop|status|url
#
# Environment (all optional):
#   POSTGRES_BIN_DIR        where initdb, pg_ctl, pg_isready, psql are (default: the
#                           PostgreSQL 15 binaries, else `pg_config --bindir`, else the newest
#                           /usr/lib/postgresql/*/bin)
#   POSTGRES_DATA_DIR       cluster, log, socket and pid live here
#                           (default ${TMPDIR:-/tmp}/attune-postgres-<uid>)
#   POSTGRES_PORT           TCP port on 127.0.0.1 (default 54329)
#   POSTGRES_DB             database created on start (default attune)
#   POSTGRES_USER           superuser created by initdb (default attune)
#   POSTGRES_PASSWORD       its password, for TCP connections (default attune)
#   POSTGRES_OS_USER        OS account the server runs as when this script runs as root
#                           (PostgreSQL refuses to run as root; default postgres, created
#                           when missing). Ignored when not root: the server runs as you.
#   POSTGRES_START_TIMEOUT  seconds to wait for the server to accept connections (default 60)
#   POSTGRES_STOP_TIMEOUT   seconds to wait for a fast shutdown before an immediate one (30)
#
# The server is a test server: fsync, synchronous_commit and full_page_writes are off
# (a crash may lose the last transactions; tests start from a fresh database anyway).
#
# `start` is idempotent and safe to call from several processes at once (test files run in
# parallel processes): a lock directory serialises check-and-start, and a start while the
# server runs is a no-op success. On success it prints
#   DATABASE_URL=postgres://<user>:<password>@127.0.0.1:<port>/<db>
# on stdout (everything else goes to stderr), so callers can `eval` or grep it. `url` prints
# the same line without starting anything.
set -euo pipefail

PORT="${POSTGRES_PORT:-54329}"
DB_NAME="${POSTGRES_DB:-attune}"
DB_USER="${POSTGRES_USER:-attune}"
DB_PASSWORD="${POSTGRES_PASSWORD:-attune}"
OS_USER="${POSTGRES_OS_USER:-postgres}"
START_TIMEOUT="${POSTGRES_START_TIMEOUT:-60}"
STOP_TIMEOUT="${POSTGRES_STOP_TIMEOUT:-30}"

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# absolute_dir, port_open, require_free_port, live_pid, acquire_lock, wait_ready
source "$(dirname "${BASH_SOURCE[0]}")/../lib/service.sh"

DATA_DIR="$(absolute_dir "${POSTGRES_DATA_DIR:-${TMPDIR:-/tmp}/attune-postgres-$(id -u)}")"
PGDATA_DIR="${DATA_DIR}/pgdata"
SOCKET_DIR="${DATA_DIR}/socket"
LOG_FILE="${DATA_DIR}/postgres.log"
LOCK_DIR="${DATA_DIR}.lock"

[[ "${PORT}" =~ ^[0-9]+$ ]] || die "POSTGRES_PORT must be a number (got ${PORT})"
[[ "${DB_NAME}" =~ ^[a-z_][a-z0-9_]*$ ]] || die "POSTGRES_DB must be a plain lower-case identifier (got ${DB_NAME})"
[[ "${DB_USER}" =~ ^[a-z_][a-z0-9_]*$ ]] || die "POSTGRES_USER must be a plain lower-case identifier (got ${DB_USER})"

database_url() {
  # The password may hold URL-reserved characters: percent-encode everything but unreserved ones.
  local enc="" c i
  for ((i = 0; i < ${#DB_PASSWORD}; i++)); do
    c="${DB_PASSWORD:i:1}"
    case "${c}" in [a-zA-Z0-9.~_-]) enc+="${c}" ;; *) enc+="$(printf '%%%02X' "'${c}")" ;; esac
  done
  echo "DATABASE_URL=postgres://${DB_USER}:${enc}@127.0.0.1:${PORT}/${DB_NAME}"
}

find_bin_dir() {
  if [[ -n "${POSTGRES_BIN_DIR:-}" ]]; then
    [[ -x "${POSTGRES_BIN_DIR}/pg_ctl" ]] || die "no pg_ctl in POSTGRES_BIN_DIR=${POSTGRES_BIN_DIR}"
    echo "${POSTGRES_BIN_DIR}"
    return
  fi
  if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
    echo /usr/lib/postgresql/15/bin
    return
  fi
  local d
  if command -v pg_config >/dev/null && d="$(pg_config --bindir 2>/dev/null)" && [[ -x "${d}/pg_ctl" ]]; then
    echo "${d}"
    return
  fi
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [[ -n "${d}" && -x "${d}/pg_ctl" ]] && { echo "${d}"; return; }
  die "PostgreSQL binaries not found (install them: apt-get install -y postgresql; or set POSTGRES_BIN_DIR)"
}

# Runs a command as the server's OS user (as yourself when not root).
as_server_user() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u "${OS_USER}" -- "$@"
  else
    "$@"
  fi
}

ensure_os_user() {
  [[ "$(id -u)" == 0 ]] || return 0
  if ! id -u "${OS_USER}" >/dev/null 2>&1; then
    log "creating OS user ${OS_USER} (PostgreSQL does not run as root)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "${OS_USER}"
  fi
}

# Prints the postmaster's pid when postmaster.pid names a live postgres of this cluster.
running_pid() {
  live_pid "${PGDATA_DIR}/postmaster.pid" "-D ${PGDATA_DIR}"
}

init_cluster() {
  if [[ -f "${PGDATA_DIR}/PG_VERSION" ]]; then
    return 0
  fi
  local bin="$1" pwfile
  mkdir -p "${DATA_DIR}"
  if [[ "$(id -u)" == 0 ]]; then
    chown "${OS_USER}:" "${DATA_DIR}"
    # The server user must be able to reach the data directory through its parents.
    as_server_user test -x "${DATA_DIR}" || die "${OS_USER} cannot reach ${DATA_DIR}; choose a POSTGRES_DATA_DIR under a world-searchable folder such as /tmp"
  fi
  chmod 700 "${DATA_DIR}"
  rm -rf "${PGDATA_DIR}"
  pwfile="${DATA_DIR}/.pwfile"
  (umask 077 && printf '%s\n' "${DB_PASSWORD}" > "${pwfile}")
  [[ "$(id -u)" == 0 ]] && chown "${OS_USER}:" "${pwfile}"
  log "initdb ${PGDATA_DIR} (superuser ${DB_USER})"
  # Sockets: trust (only this OS user can open the socket directory); TCP: scram-sha-256.
  if ! as_server_user "${bin}/initdb" -D "${PGDATA_DIR}" -U "${DB_USER}" --pwfile="${pwfile}" \
      -E UTF8 --no-locale --auth-local=trust --auth-host=scram-sha-256 >> "${LOG_FILE}.initdb" 2>&1; then
    rm -f "${pwfile}"
    tail -n 30 "${LOG_FILE}.initdb" >&2 || true
    die "initdb failed"
  fi
  rm -f "${pwfile}"
}

psql_local() {
  local bin="$1"
  shift
  as_server_user "${bin}/psql" -X -q -v ON_ERROR_STOP=1 -h "${SOCKET_DIR}" -p "${PORT}" -U "${DB_USER}" -d postgres "$@"
}

ensure_database() {
  local bin="$1" exists
  exists="$(psql_local "${bin}" -tAc "SELECT 1 FROM pg_database WHERE datname = '${DB_NAME}'")"
  if [[ "${exists}" != "1" ]]; then
    log "creating database ${DB_NAME}"
    psql_local "${bin}" -c "CREATE DATABASE \"${DB_NAME}\"" >&2
  fi
}

# ---- commands -------------------------------------------------------------------------

start() {
  local bin
  bin="$(find_bin_dir)"
  mkdir -p "$(dirname "${DATA_DIR}")"
  acquire_lock
  ensure_os_user
  if ! running_pid >/dev/null; then
    require_free_port "${PORT}" POSTGRES_PORT
    init_cluster "${bin}"
    mkdir -p "${SOCKET_DIR}"
    touch "${LOG_FILE}"
    [[ "$(id -u)" == 0 ]] && chown "${OS_USER}:" "${SOCKET_DIR}" "${LOG_FILE}"
    log "starting PostgreSQL $(cat "${PGDATA_DIR}/PG_VERSION") from ${bin} on 127.0.0.1:${PORT} (data ${DATA_DIR})"
    # -W: do not wait here; the pg_isready loop below waits, with a deadline, and notices a
    # server that died. setsid: the server outlives the caller (a test process or CI step).
    as_server_user setsid "${bin}/pg_ctl" -D "${PGDATA_DIR}" -l "${LOG_FILE}" -W -s \
      -o "-c listen_addresses=127.0.0.1 -p ${PORT} -k ${SOCKET_DIR} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=100" \
      start < /dev/null >&2 || { tail -n 30 "${LOG_FILE}" >&2 || true; die "pg_ctl start failed"; }
  fi

  local started=$SECONDS ready
  printf -v ready '%q -q -h 127.0.0.1 -p %q -d postgres -t 2' "${bin}/pg_isready" "${PORT}"
  # postmaster.pid appears a moment after pg_ctl returns: 5 s before it must be there.
  wait_ready postgres "${ready}" "running_pid >/dev/null" 5 0.1 "${LOG_FILE}"
  ensure_database "${bin}"
  log "ready in $((SECONDS - started))s (pid $(running_pid || echo '?'))"
  database_url
}

stop() {
  local bin pid
  bin="$(find_bin_dir)"
  mkdir -p "$(dirname "${DATA_DIR}")"
  acquire_lock
  if ! pid="$(running_pid)"; then
    log "not running"
    return 0
  fi
  log "stopping (pid ${pid})"
  # Fast shutdown: open sessions are disconnected, transactions rolled back.
  as_server_user "${bin}/pg_ctl" -D "${PGDATA_DIR}" -m fast -W -s stop >&2 || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "${pid}" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
      log "still running after ${STOP_TIMEOUT}s; immediate shutdown"
      as_server_user "${bin}/pg_ctl" -D "${PGDATA_DIR}" -m immediate -W -s stop >&2 || kill -KILL "${pid}" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      while kill -0 "${pid}" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
      break
    fi
    sleep 0.1
  done
  kill -0 "${pid}" 2>/dev/null && die "could not stop pid ${pid}"
  log "stopped"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    log "running (pid ${pid}, 127.0.0.1:${PORT}, data ${DATA_DIR})"
    database_url
    return 0
  fi
  log "not running"
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) database_url ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
