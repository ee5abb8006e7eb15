#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft, combined broker+controller) for tests and CI on
# machines without Docker. The jars come from Maven Central through infra/kafka/pom.xml
# and are cached, so only the first `fetch` needs the network.
#
# Usage: infra/kafka/kafka.sh fetch|start|stop|status
#
# Environment (all optional):
#   KAFKA_VERSION          Kafka release to use (default below; any 4.x on Maven Central)
#   ATTUNE_CACHE_DIR       cache root (default ~/.cache/attune); jars go to
#                          $ATTUNE_CACHE_DIR/kafka-$KAFKA_VERSION/libs
#   KAFKA_DATA_DIR         log dirs, generated config, pid and log file
#                          (default $ATTUNE_CACHE_DIR/kafka-$KAFKA_VERSION/run)
#   KAFKA_PORT             client listener port on 127.0.0.1 (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1 (default 9093)
#   KAFKA_ADVERTISED_PORT  port the broker tells clients to connect to (default KAFKA_PORT); a
#                          test puts a TCP proxy there to cut or delay the broker's answers
#   KAFKA_HEAP_OPTS        JVM heap flags (default -Xms128m -Xmx512m)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to be ready (default 120)
#   KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL (default 30)
#
# `start` is idempotent and safe to call from several processes at once (test files run
# in parallel processes): it holds a lock directory while checking and starting, and is a
# no-op success when the broker is already running. On success it prints
#   KAFKA_BROKERS=127.0.0.1:<port>
# on stdout (everything else goes to stderr), so callers can `eval` or grep it.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
CACHE_ROOT="${ATTUNE_CACHE_DIR:-${HOME}/.cache/attune}"
KAFKA_HOME="${CACHE_ROOT}/kafka-${KAFKA_VERSION}"
LIBS_DIR="${KAFKA_HOME}/libs"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
ADVERTISED_PORT="${KAFKA_ADVERTISED_PORT:-${PORT}}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd)"
POM="${SCRIPT_DIR}/pom.xml"
# Written last by fetch: its presence means the libs directory is complete for this version.
FETCH_MARKER="${LIBS_DIR}/.complete"

log() { echo "kafka.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# absolute_dir, port_open, require_free_port, live_pid, acquire_lock, wait_ready, stop_process
source "${SCRIPT_DIR}/../lib/service.sh"

# Absolute, because it ends up in the broker's config and identifies its process.
DATA_DIR="$(absolute_dir "${KAFKA_DATA_DIR:-${KAFKA_HOME}/run}")"
PID_FILE="${DATA_DIR}/kafka.pid"
OUT_FILE="${DATA_DIR}/kafka.out"
LOCK_DIR="${DATA_DIR}.lock"

# ---- fetch ------------------------------------------------------------------------------

fetch() {
  if [[ -f "${FETCH_MARKER}" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to download Kafka ${KAFKA_VERSION})"
  command -v java >/dev/null || die "java not found (Kafka ${KAFKA_VERSION} needs Java 17+)"
  log "downloading Kafka ${KAFKA_VERSION} jars with Maven into ${LIBS_DIR}"
  local started=$SECONDS staging="${LIBS_DIR}.partial.$$"
  rm -rf "${staging}"
  mkdir -p "${staging}"
  # Resolve into a staging directory and move it into place, so that an interrupted fetch
  # never leaves a libs directory that looks complete.
  # (Some Maven builds print colour codes even in batch mode; the sed drops them.)
  if ! mvn -B -q -Dstyle.color=never -f "${POM}" -Dkafka.version="${KAFKA_VERSION}" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="${staging}" 2>&1 \
      | sed -e $'s/\x1b\\[[0-9;]*m//g' -e '/^$/d' >&2; then
    rm -rf "${staging}"
    die "maven could not fetch Kafka ${KAFKA_VERSION}"
  fi
  [[ -f "${staging}/kafka_2.13-${KAFKA_VERSION}.jar" ]] || { rm -rf "${staging}"; die "kafka_2.13-${KAFKA_VERSION}.jar missing after fetch"; }
  rm -rf "${LIBS_DIR}"
  mv "${staging}" "${LIBS_DIR}"
  ls "${LIBS_DIR}" > "${FETCH_MARKER}"
  log "fetched $(wc -l < "${FETCH_MARKER}") jars in $((SECONDS - started))s"
}

# ---- process bookkeeping --------------------------------------------------------------

# Prints the broker's pid when the pid file names a live kafka.Kafka process of this data dir.
running_pid() {
  live_pid "${PID_FILE}" "kafka.Kafka ${DATA_DIR}/server.properties"
}

# Sets JAVA_ARGS: the JVM command line up to (not including) the main class. An array,
# so that the classpath wildcard reaches java unexpanded.
java_args() {
  local heap
  read -r -a heap <<< "${HEAP_OPTS}"
  # -XX:+ExitOnOutOfMemoryError: a broker that ran out of heap should die, not limp.
  JAVA_ARGS=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=${DATA_DIR}/log4j2.properties"
    "-Dkafka.logs.dir=${DATA_DIR}/logs"
    -cp "${LIBS_DIR}/*")
}

# ---- configuration --------------------------------------------------------------------

write_config() {
  mkdir -p "${DATA_DIR}/logs"
  cat > "${DATA_DIR}/server.properties" <<EOF
# Generated by infra/kafka/kafka.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${ADVERTISED_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=${DATA_DIR}/kraft-logs
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests create groups constantly; waiting 3 s for more members would only slow them.
group.initial.rebalance.delay.ms=0
# Topics are created explicitly (Bus.ensureTopics); a typo must fail, not make a topic.
auto.create.topics.enable=false
# Small and short-lived: keep segments small and let the broker start quickly.
log.segment.bytes=16777216
log.retention.hours=24
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
EOF
  cat > "${DATA_DIR}/log4j2.properties" <<EOF
# Generated by infra/kafka/kafka.sh: INFO to ${DATA_DIR}/logs/server.log, warnings also to stdout
# (which is ${OUT_FILE}).
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${DATA_DIR}/logs/server.log
appender.file.filePattern = ${DATA_DIR}/logs/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
appender.out.filter.threshold.type = ThresholdFilter
appender.out.filter.threshold.level = warn
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = warn
EOF
}

format_storage() {
  if [[ -f "${DATA_DIR}/kraft-logs/meta.properties" ]]; then
    return 0
  fi
  # A cluster id is 16 random bytes in unpadded URL-safe base64, as Kafka's Uuid prints it. Like
  # Kafka's Uuid.randomUuid, draw again while it starts with '-': the storage tool reads such an
  # id as an option ("argument --cluster-id/-t: expected one argument"; 1 start in 64 failed so
  # in CI).
  local cluster_id="-"
  while [[ "${cluster_id}" == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  log "formatting ${DATA_DIR}/kraft-logs (cluster id ${cluster_id})"
  java_args
  "${JAVA_ARGS[@]}" kafka.tools.StorageTool format -t "${cluster_id}" \
    -c "${DATA_DIR}/server.properties" >> "${OUT_FILE}" 2>&1 \
    || { tail -n 30 "${OUT_FILE}" >&2; die "storage format failed"; }
}

# The broker is ready when a client can fetch cluster metadata that lists it. kafkajs
# (the client Attune uses) checks that when the repo's node_modules has it; otherwise
# the broker's own "started" log line has to do.
broker_ready() {
  port_open "${PORT}" || return 1
  if [[ -d "${REPO_ROOT}/node_modules/kafkajs" ]] && command -v node >/dev/null; then
    (cd "${REPO_ROOT}" && node --input-type=module -e '
      import { Kafka, logLevel } from "kafkajs";
      const kafka = new Kafka({ clientId: "kafka-sh-ready", brokers: [process.argv[1]],
        logLevel: logLevel.NOTHING, connectionTimeout: 2000, requestTimeout: 3000, retry: { retries: 0 } });
      const admin = kafka.admin();
      try {
        await admin.connect();
        const { brokers } = await admin.describeCluster();
        if (!brokers.some((b) => b.nodeId === 1)) process.exit(1);
        await admin.listTopics();
        process.exit(0);
      } catch { process.exit(1); }
    ' "127.0.0.1:${PORT}") >/dev/null 2>&1
  else
    grep -q "Kafka Server started" "${DATA_DIR}/logs/server.log" 2>/dev/null
  fi
}

# ---- commands -------------------------------------------------------------------------

start() {
  mkdir -p "$(dirname "${DATA_DIR}")"
  acquire_lock
  if running_pid >/dev/null; then
    if broker_ready; then
      echo "KAFKA_BROKERS=127.0.0.1:${PORT}"
      return 0
    fi
    log "broker process $(running_pid) is up but not ready yet; waiting"
  else
    fetch
    command -v java >/dev/null || die "java not found (Kafka ${KAFKA_VERSION} needs Java 17+)"
    require_free_port "${PORT}" KAFKA_PORT
    require_free_port "${CONTROLLER_PORT}" KAFKA_CONTROLLER_PORT
    rm -f "${PID_FILE}"
    write_config
    : > "${OUT_FILE}"
    format_storage
    log "starting Kafka ${KAFKA_VERSION} on 127.0.0.1:${PORT} (data ${DATA_DIR})"
    # setsid + nohup + closed stdin/stdout: the broker outlives the caller (a test process
    # or CI step) and does not hold the caller's pipes open.
    java_args
    setsid nohup "${JAVA_ARGS[@]}" kafka.Kafka "${DATA_DIR}/server.properties" \
      < /dev/null >> "${OUT_FILE}" 2>&1 &
    echo $! > "${PID_FILE}"
  fi

  local pid started=$SECONDS
  pid="$(cat "${PID_FILE}")"
  wait_ready "broker process ${pid}" broker_ready "kill -0 ${pid} 2>/dev/null" 0 0.5 \
    "${OUT_FILE}" "${DATA_DIR}/logs/server.log"
  log "ready in $((SECONDS - started))s (pid ${pid})"
  echo "KAFKA_BROKERS=127.0.0.1:${PORT}"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    log "running (pid ${pid}, 127.0.0.1:${PORT}, data ${DATA_DIR})"
    return 0
  fi
  log "not running"
  return 1
}

case "${1:-}" in
  fetch) fetch; log "Kafka ${KAFKA_VERSION} jars in ${LIBS_DIR}" ;;
  start) start ;;
  stop) stop_process broker ;;
  status) status ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
