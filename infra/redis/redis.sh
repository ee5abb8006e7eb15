#!/usr/bin/env bash
# A real Redis server for the shared rate limits (REDIS_URL) in tests and CI, run from the
# machine's own redis-server (Debian: `apt-get install redis-server`). Like
# infra/postgres/postgres.sh: no download, no container, one server per data directory.
#
# Usage: infra/redis/redis.sh start|stop|status|url
#
# Environment (all optional):
#   REDIS_SERVER_BIN     the redis-server binary (default: the one on PATH)
#   REDIS_PORT           TCP port on 127.0.0.1 (default 6389, beside a system Redis on 6379)
#   REDIS_DATA_DIR       pid file, log and working directory
#                        (default ${TMPDIR:-/tmp}/attune-redis-<uid>)
#   REDIS_START_TIMEOUT  seconds to wait for the server to answer PING (default 30)
#   REDIS_STOP_TIMEOUT   seconds to wait for it to exit before SIGKILL (default 15)
#
# The server is a test server: bound to 127.0.0.1, nothing saved to disk (no RDB, no AOF).
# `start` is idempotent and safe to call from several processes at once (a lock directory
# serialises check-and-start; a start while it runs is a no-op success). On success it prints
#   REDIS_URL=redis://127.0.0.1:<port>
# on stdout (everything else goes to stderr). `url` prints the same line without starting.
set -euo pipefail

PORT="${REDIS_PORT:-6389}"
START_TIMEOUT="${REDIS_START_TIMEOUT:-30}"
STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-15}"

log() { echo "redis.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# absolute_dir, port_open, require_free_port, live_pid, acquire_lock, wait_ready, stop_process
# shellcheck source=../lib/service.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/service.sh"

DATA_DIR="$(absolute_dir "${REDIS_DATA_DIR:-${TMPDIR:-/tmp}/attune-redis-$(id -u)}")"
PID_FILE="${DATA_DIR}/redis.pid"
LOG_FILE="${DATA_DIR}/redis.log"
LOCK_DIR="${DATA_DIR}.lock"

[[ "${PORT}" =~ ^[0-9]+$ ]] || die "REDIS_PORT must be a number (got ${PORT})"

redis_url() { echo "REDIS_URL=redis://127.0.0.1:${PORT}"; }

find_server() {
  local bin="${REDIS_SERVER_BIN:-}"
  if [[ -z "${bin}" ]]; then
    bin="$(command -v redis-server || true)"
    [[ -n "${bin}" ]] || die "no redis-server on PATH (Debian: apt-get install redis-server; or set REDIS_SERVER_BIN)"
  fi
  [[ -x "${bin}" ]] || die "${bin} is not executable"
  echo "${bin}"
}

# The pid of our server, when the pid file names a live process.
running_pid() {
  live_pid "${PID_FILE}"
}

# PING over bash's /dev/tcp, so redis-cli is not needed.
answers_ping() {
  local reply
  exec 3<>"/dev/tcp/127.0.0.1/${PORT}" 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || true
  exec 3>&- 3<&-
  [[ "${reply}" == "+PONG"* ]]
}

start() {
  local bin
  bin="$(find_server)"
  mkdir -p "${DATA_DIR}"
  chmod 700 "${DATA_DIR}"
  acquire_lock
  if ! running_pid >/dev/null; then
    require_free_port "${PORT}" REDIS_PORT
    log "starting $("${bin}" --version | awk '{print $3}') on 127.0.0.1:${PORT} (data ${DATA_DIR})"
    rm -f "${PID_FILE}"
    # setsid: the server outlives the caller (a test process or a CI step).
    setsid "${bin}" --port "${PORT}" --bind 127.0.0.1 --protected-mode yes --dir "${DATA_DIR}" \
      --daemonize yes --pidfile "${PID_FILE}" --logfile "${LOG_FILE}" \
      --save '' --appendonly no --maxmemory 256mb --maxmemory-policy volatile-ttl < /dev/null >&2 \
      || { tail -n 30 "${LOG_FILE}" >&2 || true; die "redis-server failed to start"; }
  fi
  # The pid file appears once redis-server has daemonized: 3 s before it must be there.
  wait_ready redis-server answers_ping "running_pid >/dev/null" 3 0.1 "${LOG_FILE}"
  log "ready (pid $(running_pid || echo '?'))"
  redis_url
}

status() {
  local pid
  if pid="$(running_pid)" && answers_ping; then
    log "running (pid ${pid}, 127.0.0.1:${PORT}, data ${DATA_DIR})"
    redis_url
    return 0
  fi
  log "not running"
  return 1
}

case "${1:-}" in
  start) start ;;
  # SIGTERM: Redis shuts down cleanly (nothing to save: --save '').
  stop) stop_process redis-server ;;
  status) status ;;
  url) redis_url ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
