#!/usr/bin/env bash
# A real Confluent-compatible Schema Registry for tests and CI on machines without Docker:
# Apicurio Registry 2.0.2.Final with in-memory storage, built from Maven Central through
# infra/schema-registry/pom.xml (see there why that version) and cached, so only the first
# `fetch` needs the network and a build (about 1.5 min); later starts take about 15 s.
#
# Usage: infra/schema-registry/registry.sh fetch|start|stop|status
#
# Environment (all optional):
#   ATTUNE_CACHE_DIR              cache root (default ~/.cache/attune); the build goes to
#                                 $ATTUNE_CACHE_DIR/apicurio-registry-2.0.2.Final
#   SCHEMA_REGISTRY_PORT          HTTP port on 127.0.0.1 (default 18081)
#   SCHEMA_REGISTRY_DATA_DIR      pid and log file (default <cache>/run); the schemas
#                                 themselves live in memory and die with the process
#   SCHEMA_REGISTRY_COMPATIBILITY global compatibility level set after start (default
#                                 BACKWARD, Confluent's default; Apicurio's own is NONE)
#   SCHEMA_REGISTRY_HEAP_OPTS     JVM heap flags (default -Xms64m -Xmx384m)
#   SCHEMA_REGISTRY_START_TIMEOUT seconds to wait for readiness (default 120)
#   SCHEMA_REGISTRY_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL (default 20)
#
# `start` is idempotent and safe to call from several processes at once (a lock directory),
# a no-op success when the registry is already running. On success it prints
#   SCHEMA_REGISTRY_URL=http://127.0.0.1:<port>/apis/ccompat/v6
# on stdout (everything else goes to stderr). `status` prints the same line when it is up.
set -euo pipefail

APICURIO_VERSION=2.0.2.Final
CACHE_ROOT="${ATTUNE_CACHE_DIR:-${HOME}/.cache/attune}"
REG_HOME="${CACHE_ROOT}/apicurio-registry-${APICURIO_VERSION}"
APP_DIR="${REG_HOME}/app"
RUNNER_JAR="${APP_DIR}/apicurio-registry-runner-0-runner.jar"
PORT="${SCHEMA_REGISTRY_PORT:-18081}"
COMPATIBILITY="${SCHEMA_REGISTRY_COMPATIBILITY:-BACKWARD}"
HEAP_OPTS="${SCHEMA_REGISTRY_HEAP_OPTS:--Xms64m -Xmx384m}"
START_TIMEOUT="${SCHEMA_REGISTRY_START_TIMEOUT:-120}"
STOP_TIMEOUT="${SCHEMA_REGISTRY_STOP_TIMEOUT:-20}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="${SCRIPT_DIR}/pom.xml"
FETCH_MARKER="${APP_DIR}/.complete"
API_PATH=/apis/ccompat/v6
URL="http://127.0.0.1:${PORT}${API_PATH}"

log() { echo "registry.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# absolute_dir, port_open, require_free_port, live_pid, acquire_lock, wait_ready, stop_process
source "${SCRIPT_DIR}/../lib/service.sh"

DATA_DIR="$(absolute_dir "${SCHEMA_REGISTRY_DATA_DIR:-${REG_HOME}/run}")"
PID_FILE="${DATA_DIR}/registry.pid"
OUT_FILE="${DATA_DIR}/registry.out"
LOCK_DIR="${DATA_DIR}.lock"

# ---- fetch ------------------------------------------------------------------------------

fetch() {
  if [[ -f "${FETCH_MARKER}" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to build Apicurio Registry ${APICURIO_VERSION})"
  command -v java >/dev/null || die "java not found (Apicurio Registry needs Java 11+)"
  command -v unzip >/dev/null || die "unzip not found"
  log "building Apicurio Registry ${APICURIO_VERSION} from Maven Central into ${APP_DIR}"
  local started=$SECONDS staging="${REG_HOME}/build.$$"
  rm -rf "${staging}"
  mkdir -p "${staging}/src/main/resources" "${staging}/dl"
  cp "${POM}" "${staging}/pom.xml"
  mvn_q() { mvn -B -q -Dstyle.color=never "$@" 2>&1 | sed -e $'s/\x1b\\[[0-9;]*m//g' -e '/^$/d' >&2; return "${PIPESTATUS[0]}"; }
  # The published application jar carries the registry's application.properties but no
  # Jandex index: the build uses those properties and is told to index the jar, or Quarkus
  # would find none of its beans.
  mvn_q -f "${staging}/pom.xml" dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:${APICURIO_VERSION}" \
    -DoutputDirectory="${staging}/dl" || { rm -rf "${staging}"; die "maven could not fetch apicurio-registry-app ${APICURIO_VERSION}"; }
  unzip -p "${staging}/dl/apicurio-registry-app-${APICURIO_VERSION}.jar" application.properties \
    > "${staging}/src/main/resources/application.properties" \
    || { rm -rf "${staging}"; die "application.properties missing from apicurio-registry-app ${APICURIO_VERSION}"; }
  cat >> "${staging}/src/main/resources/application.properties" <<'EOF'

# Added by infra/schema-registry/registry.sh: index the application jar for CDI.
quarkus.index-dependency.apicurio-app.group-id=io.apicurio
quarkus.index-dependency.apicurio-app.artifact-id=apicurio-registry-app
EOF
  if ! mvn_q -f "${staging}/pom.xml" -DskipTests package; then
    rm -rf "${staging}"
    die "maven could not build Apicurio Registry ${APICURIO_VERSION}"
  fi
  [[ -f "${staging}/target/apicurio-registry-runner-0-runner.jar" ]] || { rm -rf "${staging}"; die "runner jar missing after the build"; }
  rm -rf "${APP_DIR}"
  mkdir -p "${APP_DIR}"
  mv "${staging}/target/apicurio-registry-runner-0-runner.jar" "${staging}/target/lib" "${APP_DIR}/"
  rm -rf "${staging}"
  ls "${APP_DIR}/lib" > "${FETCH_MARKER}"
  log "built in $((SECONDS - started))s ($(wc -l < "${FETCH_MARKER}") jars)"
}

# ---- process bookkeeping --------------------------------------------------------------

# Prints the registry's pid when the pid file names a live process running our jar.
running_pid() {
  live_pid "${PID_FILE}" "-jar ${RUNNER_JAR}"
}

# Ready when the Confluent API answers a list of subjects.
registry_ready() {
  port_open "${PORT}" || return 1
  curl -sf -o /dev/null --max-time 3 "${URL}/subjects"
}

set_compatibility() {
  curl -sf -o /dev/null --max-time 10 -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
    -d "{\"compatibility\":\"${COMPATIBILITY}\"}" "${URL}/config" \
    || die "could not set the global compatibility level ${COMPATIBILITY}"
}

# ---- commands -------------------------------------------------------------------------

start() {
  mkdir -p "$(dirname "${DATA_DIR}")"
  acquire_lock
  command -v curl >/dev/null || die "curl not found"
  if running_pid >/dev/null; then
    if registry_ready; then
      echo "SCHEMA_REGISTRY_URL=${URL}"
      return 0
    fi
    log "registry process $(running_pid) is up but not ready yet; waiting"
  else
    fetch
    require_free_port "${PORT}" SCHEMA_REGISTRY_PORT
    mkdir -p "${DATA_DIR}"
    rm -f "${PID_FILE}"
    : > "${OUT_FILE}"
    log "starting Apicurio Registry ${APICURIO_VERSION} on 127.0.0.1:${PORT} (in memory; log ${OUT_FILE})"
    local heap
    read -r -a heap <<< "${HEAP_OPTS}"
    # setsid + nohup + closed stdin/stdout: the registry outlives the caller (a test process
    # or CI step) and does not hold the caller's pipes open.
    HTTP_PORT="${PORT}" QUARKUS_HTTP_HOST=127.0.0.1 LOG_LEVEL=WARN REGISTRY_LOG_LEVEL=WARN \
      setsid nohup java "${heap[@]}" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -jar "${RUNNER_JAR}" < /dev/null >> "${OUT_FILE}" 2>&1 &
    echo $! > "${PID_FILE}"
  fi

  local pid started=$SECONDS
  pid="$(cat "${PID_FILE}")"
  wait_ready "registry process ${pid}" registry_ready "kill -0 ${pid} 2>/dev/null" 0 0.5 "${OUT_FILE}"
  set_compatibility
  log "ready in $((SECONDS - started))s (pid ${pid}, global compatibility ${COMPATIBILITY})"
  echo "SCHEMA_REGISTRY_URL=${URL}"
}

status() {
  local pid
  if pid="$(running_pid)" && registry_ready; then
    log "running (pid ${pid}, data ${DATA_DIR})"
    echo "SCHEMA_REGISTRY_URL=${URL}"
    return 0
  fi
  log "not running"
  return 1
}

case "${1:-}" in
  fetch) fetch; log "Apicurio Registry ${APICURIO_VERSION} in ${APP_DIR}" ;;
  start) start ;;
  stop) stop_process registry ;;
  status) status ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
