#!/usr/bin/env bash
# Installs schemathesis (PyPI, pinned) into its own virtualenv when it is missing:
#   bash scripts/fuzz/install.sh            -> /opt/attune-fuzz (ATTUNE_FUZZ_VENV overrides)
# Prints the path of the `st` command. Used by .ci/run and scripts/fuzz/schemathesis.sh.
set -euo pipefail
SCHEMATHESIS_VERSION=4.32.5
venv="${ATTUNE_FUZZ_VENV:-/opt/attune-fuzz}"
st="${venv}/bin/st"
if [[ -x "${st}" ]] && "${st}" --version 2>/dev/null | grep -q "version ${SCHEMATHESIS_VERSION}\$"; then
  echo "${st}"
  exit 0
fi
python="$(command -v python3 || true)"
if [[ -z "${python}" ]] || ! "${python}" -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian's python3 comes without venv/ensurepip.
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
  python="$(command -v python3)"
fi
"${python}" -m venv "${venv}" >&2
"${venv}/bin/pip" install --quiet --disable-pip-version-check "schemathesis==${SCHEMATHESIS_VERSION}" >&2
"${st}" --version >&2
echo "${st}"
