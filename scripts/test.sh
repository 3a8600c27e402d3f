#!/usr/bin/env bash
# Install, then run the test suite: unit and end-to-end tests (tests/) and the smoke-profile claim
# cells (claims/), in parallel with pytest-xdist. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
# The browser test renders the report in headless Chromium; as root on Debian, install it when missing.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
        || echo "scripts/test.sh: could not install chromium; the browser test will be skipped" >&2
fi
export RNNCLAIMS_ARTIFACTS=${RNNCLAIMS_ARTIFACTS:-reports/ci-artifacts}
mkdir -p "$RNNCLAIMS_ARTIFACTS"
exec python -m pytest -n "${WORKERS:-2}" tests claims "$@"
