#!/usr/bin/env bash
# Fuzzes a running Attune from its own OpenAPI document with schemathesis (issue 9):
#   bash scripts/fuzz/schemathesis.sh
# Starts `attune all` (embedded bus, chDB, PGlite) on 127.0.0.1:18085 with a fresh data dir,
# mints one token with every scope, and runs schemathesis against /docs/json: every phase
# (examples, coverage, fuzzing, stateful), bounded in time. Fails on any server error (5xx),
# any answer that breaks its documented schema, an undocumented status or content type.
#
# Environment (all optional):
#   ATTUNE_FUZZ_PORT (18085)  ATTUNE_FUZZ_DATA_DIR (/tmp/h-fuzz-data, emptied first)
#   ATTUNE_FUZZ_MAX_TIME (150 s for the schemathesis run)  ATTUNE_FUZZ_MAX_EXAMPLES (50 per operation)
#   ATTUNE_FUZZ_SEED (random)  ATTUNE_FUZZ_REPORT_DIR (<data dir>-report: JUnit and NDJSON)
#   ATTUNE_FUZZ_CHECKS (the five above; `all` adds schemathesis' heuristic ones, e.g.
#     positive_data_acceptance, which business rules beyond the schema always fail)
#   ATTUNE_FUZZ_SRC=1  run the TypeScript sources through tsx instead of dist/ (no rebuild)
#   ATTUNE_FUZZ_VENV   schemathesis' virtualenv (/opt/attune-fuzz; created when missing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

port="${ATTUNE_FUZZ_PORT:-18085}"
data_dir="${ATTUNE_FUZZ_DATA_DIR:-/tmp/h-fuzz-data}"
report_dir="${ATTUNE_FUZZ_REPORT_DIR:-${data_dir}-report}"
max_time="${ATTUNE_FUZZ_MAX_TIME:-150}"
max_examples="${ATTUNE_FUZZ_MAX_EXAMPLES:-50}"
base="http://127.0.0.1:${port}"
# `all`: every scope Attune knows, so routes added later are fuzzed with their scope too (a
# written list here missed mesh:* and the user scopes: 8 routes answered only 403).
all_scopes="all"

st="$(bash scripts/fuzz/install.sh)"

if [[ "${ATTUNE_FUZZ_SRC:-0}" == 1 ]]; then
  attune=(node --import tsx scripts/fuzz/attune-src.ts)
else
  attune=(node bin/attune.js)
fi

if curl -s -o /dev/null "${base}/health/live"; then
  echo "fuzz: something already listens on port ${port}" >&2
  exit 1
fi
rm -rf "${data_dir}" "${report_dir}"
mkdir -p "${report_dir}"
server_log="${report_dir}/attune.log"

# Attune on its own: the embedded bus, chDB and PGlite in the data dir (not the CI's Kafka or
# PostgreSQL), no speech models (the speech routes are there; uploads wait for a worker), no
# simulator. The enterprise tier's request limits (10,000/min): the fuzzer's pace is not what
# is tested, a 429 is still a documented answer.
env -u KAFKA_BROKERS -u DATABASE_URL -u CLICKHOUSE_URL -u REDIS_URL \
  PORT="${port}" HOST=127.0.0.1 ATTUNE_DATA_DIR="${data_dir}" ATTUNE_SPEECH=0 ATTUNE_SIMULATE=0 \
  ATTUNE_DEFAULT_TIER=enterprise LOG_LEVEL="${LOG_LEVEL:-info}" \
  "${attune[@]}" all > "${server_log}" 2>&1 &
server_pid=$!

stop_server() {
  if kill -0 "${server_pid}" 2>/dev/null; then
    kill -TERM "${server_pid}" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "${server_pid}" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "${server_pid}" 2>/dev/null || true
  fi
  wait "${server_pid}" 2>/dev/null || true
  rm -rf "${data_dir}"
}
trap stop_server EXIT

ready=0
for _ in $(seq 240); do
  if curl -sf -o /dev/null "${base}/health/ready"; then ready=1; break; fi
  kill -0 "${server_pid}" 2>/dev/null || break
  sleep 0.5
done
if [[ "${ready}" != 1 ]]; then
  echo "fuzz: attune did not become ready on ${base}; its log:" >&2
  tail -n 40 "${server_log}" >&2
  exit 1
fi

token="$(env -u KAFKA_BROKERS -u DATABASE_URL ATTUNE_DATA_DIR="${data_dir}" "${attune[@]}" token --user fuzz-user --org fuzz-org --scopes "${all_scopes}")"

seed_args=()
[[ -n "${ATTUNE_FUZZ_SEED:-}" ]] && seed_args=(--seed "${ATTUNE_FUZZ_SEED}")
set +e
# From the report dir: schemathesis keeps its example database in ./.schemathesis.
# One worker: with two, Python 3.11's ast.parse (hypothesis describing its filters) failed
# now and then in both threads at once (SystemError: AST constructor recursion depth mismatch),
# an error of the tool that failed a run whose every case had passed.
(cd "${report_dir}" && "${st}" --no-color run "${base}/docs/json" \
  --header "Authorization: Bearer ${token}" \
  --checks "${ATTUNE_FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}" \
  --max-time "${max_time}" --max-examples "${max_examples}" --request-timeout 30 \
  --workers 1 --suppress-health-check all \
  --report junit,ndjson --report-dir "${report_dir}" \
  "${seed_args[@]}") 2>&1 | tee "${report_dir}/schemathesis.txt"
status=${PIPESTATUS[0]}
set -e

# What the server itself saw: requests it answered with a 5xx (logged at error level with
# their request id).
server_errors="$(grep '"level":50' "${server_log}" | grep -c '"reqId"' || true)"
summary="$(grep -A1 -E '^ *Test cases:' "${report_dir}/schemathesis.txt" | tr -s ' \n' ' ')"
echo "fuzz: schemathesis exit ${status}; ${summary}; errors logged by attune: ${server_errors}; reports in ${report_dir}" >&2
if [[ "${server_errors}" != 0 ]]; then
  echo "fuzz: attune logged errors:" >&2
  grep '"level":50' "${server_log}" | grep '"reqId"' | cut -c1-600 | head -n 20 >&2
  [[ "${status}" == 0 ]] && status=1
fi
exit "${status}"
