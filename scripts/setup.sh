#!/usr/bin/env bash
# Create .venv (once) and install rnn-claims into it. Sourced by scripts/main.sh and scripts/test.sh.
#
# torch: a CPU machine gets the pinned CPU-friendly torch (RNNCLAIMS_TORCH, default torch==2.13.0).
# On a GPU machine, install the CUDA build of torch into .venv first (or set RNNCLAIMS_TORCH="torch",
# which on Linux takes PyPI's CUDA build); an importable torch is never replaced.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
if ! python -c "import torch" >/dev/null 2>&1; then
    python -m pip install -q "${RNNCLAIMS_TORCH:-torch==2.13.0}"
fi
python -m pip install -q -e ".[test]"
