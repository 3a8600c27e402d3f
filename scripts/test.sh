#!/usr/bin/env bash
# Install, then run the test suite: unit, engine, end-to-end and browser tests (tests/) and the
# smoke-profile claim cells (claims/, with --strict semantics: asserted cells hold, controls fail), in
# parallel with pytest-xdist. Extra arguments go to pytest. With CI set (or PACKAGING=1), then check the
# built wheel and the example plugin in a fresh venv (scripts/check_packaging.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
# The browser test renders the report in headless Chromium; as root on Debian, install it when missing.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
        || echo "scripts/test.sh: could not install chromium; the browser test will fail" >&2
fi
export RNNCLAIMS_ARTIFACTS=${RNNCLAIMS_ARTIFACTS:-reports/ci-artifacts}
mkdir -p "$RNNCLAIMS_ARTIFACTS"
# The claim cells' records are this test run's artifacts: a run replaces the previous run's (which may be
# of another commit; without --claims-fresh the plugin refuses such a folder).
python -m pytest -n "${WORKERS:-2}" tests claims --claims-fresh "$@"
if [ -n "${CI:-}" ] || [ -n "${PACKAGING:-}" ]; then
    bash scripts/check_packaging.sh
fi
