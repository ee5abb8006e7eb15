# Helpers shared by the scripts that run a local service (infra/kafka/kafka.sh,
# infra/postgres/postgres.sh). Sourced, not run. The sourcing script defines log() and die()
# first and sets LOCK_DIR and START_TIMEOUT.

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
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
