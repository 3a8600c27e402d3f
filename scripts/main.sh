#!/usr/bin/env bash
# The main job: install, then run every claim of a profile and write the HTML report.
#   scripts/main.sh                      # quick profile -> reports/latest/index.html
#   PROFILE=standard scripts/main.sh     # any profile; extra arguments go to `rnnclaims run`
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
exec rnnclaims run --profile "${PROFILE:-quick}" --out "${OUT:-reports/latest}" --workers "${WORKERS:-2}" "$@"
