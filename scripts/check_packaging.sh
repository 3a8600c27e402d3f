#!/usr/bin/env bash
# Packaging check: the built wheel of rnn-claims and the example plugin, in a fresh venv, run from a
# folder outside the source tree (so nothing of the checkout is importable).
#
#   1. copy the checkout's tracked and untracked-but-not-ignored files to a temp dir (the build then
#      sees exactly what a clean checkout has: no stale build/, no egg-info, nothing left in the tree);
#   2. fresh venv; build the wheel (pip wheel --no-deps) and check it ships LICENSE and py.typed;
#   3. install torch pinned (RNNCLAIMS_TORCH, default torch==2.13.0; never an unpinned torch) and the
#      wheel (non-editable) with its [test] extra, then examples/rnn-claims-example;
#   4. from an empty folder: `rnnclaims list` shows the example claim and the built-in FWD;
#      `python -m pytest --pyargs claims --claims-profile smoke -p xdist -n 0 -k EXAMPLE_ID` passes
#      with more than 0 items (junit counts; exit code 5 = nothing collected is a failure);
#      `rnnclaims run --profile smoke --claims EXAMPLE_ID --out DIR --strict` succeeds and
#      DIR/index.html names the example claim (and shows its own figure, once the report draws
#      Claim.figures: REQUIRE_CLAIM_FIGURE below).
# Exits non-zero with a "check_packaging: FAIL: ..." line on the first failure; removes its temp dir.
# Environment: PYTHON (interpreter for the venv, default python3), RNNCLAIMS_TORCH, KEEP=1 keeps the
# temp dir for inspection.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${RNNCLAIMS_TORCH:-torch==2.13.0}
EXAMPLE_ID=LRELU-FWD
EXAMPLE_DIR=examples/rnn-claims-example
START=$(date +%s)

# The run must not be steered by the caller's rnn-claims settings or import path.
unset PYTHONPATH RNNCLAIMS_REGISTRY RNNCLAIMS_PROFILE RNNCLAIMS_OUT RNNCLAIMS_DEVICE RNNCLAIMS_SEED VIRTUAL_ENV || true
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { echo "check_packaging: [$(( $(date +%s) - START ))s] $*"; }
fail() { echo "check_packaging: FAIL: $*" >&2; exit 1; }

case "$TORCH_SPEC" in
    *==*|*.whl|/*) ;;
    *) fail "RNNCLAIMS_TORCH must pin a version (torch==X.Y.Z) or name a wheel file, got '$TORCH_SPEC'" ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rnnclaims-packaging.XXXXXX")
cleanup() {
    local rc=$?
    if [ "${KEEP:-0}" = 1 ]; then
        echo "check_packaging: kept $WORK"
    else
        rm -rf "$WORK"
    fi
    if [ "$rc" = 0 ]; then
        echo "check_packaging: OK in $(( $(date +%s) - START )) s"
    else
        echo "check_packaging: failed (exit $rc) after $(( $(date +%s) - START )) s" >&2
    fi
}
trap cleanup EXIT

SRC=$WORK/src VENV=$WORK/venv WHEELS=$WORK/wheels RUN=$WORK/run
mkdir -p "$SRC" "$WHEELS" "$RUN"

# 1. a clean copy of the source ------------------------------------------------------------------
log "copying the source tree to $SRC"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
        | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$SRC"
else
    tar -C "$ROOT" --exclude=./.venv --exclude=./.git --exclude=./build --exclude='*.egg-info' \
        --exclude=__pycache__ --exclude=./reports/latest --exclude=./reports/pytest-latest -cf - . | tar -xf - -C "$SRC"
fi
[ -f "$SRC/pyproject.toml" ] || fail "no pyproject.toml in the copied source ($ROOT)"
[ -f "$SRC/$EXAMPLE_DIR/pyproject.toml" ] || fail "no $EXAMPLE_DIR/pyproject.toml in the source"

# 2. fresh venv, the wheel ------------------------------------------------------------------------------
# pip's output goes to $WORK/*.log and is shown only when a step fails.
pip_step() {  # pip_step LOGNAME WHAT ARGS...: run "python -m pip ARGS..." quietly, fail with its log
    local name=$1 what=$2
    shift 2
    if ! "$PY" -m pip "$@" > "$WORK/$name.log" 2>&1; then
        grep -v "is neither a file nor a directory" "$WORK/$name.log" | tail -n 40 >&2
        fail "$what"
    fi
}
log "creating a fresh venv with $PYTHON ($("$PYTHON" --version 2>&1))"
"$PYTHON" -m venv "$VENV" || fail "could not create a venv with $PYTHON"
PY=$VENV/bin/python

log "building the rnn-claims wheel (pip wheel --no-deps)"
pip_step wheel "pip wheel of rnn-claims failed" wheel --no-deps "$SRC" -w "$WHEELS"
shopt -s nullglob
wheels=("$WHEELS"/rnn_claims-*.whl)
shopt -u nullglob
[ "${#wheels[@]}" = 1 ] || fail "expected one rnn_claims-*.whl in $WHEELS, found ${#wheels[@]}"
WHEEL=${wheels[0]}
log "built $(basename "$WHEEL")"
"$PY" - "$WHEEL" <<'EOF2' || fail "the wheel lacks files it must ship (above)"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["claims/py.typed", "rnn_core/py.typed", "reports/py.typed", "claims/test_claims.py",
        "claims/pytest_plugin.py", "reports/templates/report.html.j2"]
missing = [n for n in need if n not in names]
if not any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names):
    missing.append("*.dist-info/licenses/LICENSE")
for n in missing:
    print(f"check_packaging: the wheel does not contain {n}", file=sys.stderr)
sys.exit(1 if missing else 0)
EOF2

# 3. install: pinned torch and the wheel (non-editable) with [test], then the example plugin ------------
# --no-compile: no .pyc for all of torch up front (minutes on 2 cores); imports compile what they use.
log "installing $TORCH_SPEC and $(basename "$WHEEL")[test]"
pip_step install "pip install $TORCH_SPEC ${WHEEL}[test] failed" install --no-compile "$TORCH_SPEC" "${WHEEL}[test]"
log "installing $EXAMPLE_DIR"
pip_step example "pip install $EXAMPLE_DIR failed" install --no-compile "$SRC/$EXAMPLE_DIR"
"$PY" -m pip show -q rnn-claims-example >/dev/null 2>&1 || fail "rnn-claims-example is not installed"
"$PY" -c "import torch, sys; v = torch.__version__.split('+')[0]; want = sys.argv[1].partition('==')[2]; \
sys.exit(0 if not want or v == want else f'check_packaging: torch {v} installed, {want} asked')" "$TORCH_SPEC" \
    || fail "the pinned torch was replaced"

# 4. use it from outside the source tree -----------------------------------------------------------------
cd "$RUN"
BIN=$VENV/bin
"$PY" - "$VENV" <<'EOF' || fail "the installed packages are not the ones imported (above)"
import os, sys
venv = os.path.realpath(sys.argv[1])
import claims, reports, rnn_core, rnn_claims_example
bad = 0
for mod in (claims, reports, rnn_core, rnn_claims_example):
    path = os.path.realpath(mod.__file__)
    if not path.startswith(venv + os.sep):
        print(f"check_packaging: {mod.__name__} imported from {path}, not from the venv", file=sys.stderr)
        bad = 1
    elif mod is not rnn_claims_example and not os.path.exists(os.path.join(os.path.dirname(path), "py.typed")):
        print(f"check_packaging: {mod.__name__} is installed without py.typed", file=sys.stderr)
        bad = 1
sys.exit(bad)
EOF

log "rnnclaims list"
"$BIN/rnnclaims" list > list.txt 2>&1 || { cat list.txt; fail "rnnclaims list exited non-zero"; }
grep -q "^$EXAMPLE_ID " list.txt || { cat list.txt; fail "rnnclaims list does not show $EXAMPLE_ID (entry point rnn_claims.catalogues)"; }
grep -q "^FWD " list.txt || { cat list.txt; fail "rnnclaims list does not show the built-in claim FWD"; }
log "rnnclaims list shows $EXAMPLE_ID beside $(grep -c '^[A-Z]' list.txt) claims in all"

log "pytest --pyargs claims -k $EXAMPLE_ID (smoke)"
set +e
"$PY" -m pytest --pyargs claims --claims-profile smoke -p xdist -n 0 -k "$EXAMPLE_ID" \
    --rootdir "$RUN" -p no:cacheprovider --claims-out "$RUN/pytest-out" --junitxml "$RUN/junit.xml" \
    -q -o addopts= > pytest.txt 2>&1
rc=$?
set -e
tail -n 5 pytest.txt
[ "$rc" = 5 ] && fail "pytest --pyargs claims collected no items for -k $EXAMPLE_ID (exit 5)"
[ "$rc" = 0 ] || { cat pytest.txt; fail "pytest --pyargs claims exited $rc"; }
"$PY" - "$RUN/junit.xml" "$EXAMPLE_ID" <<'EOF' || fail "pytest --pyargs claims: wrong item counts (above)"
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suite = root if root.tag == "testsuite" else root.find("testsuite")
n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
cases = [c.get("name", "") for c in suite.iter("testcase")]
print(f"check_packaging: pytest items: {n}")
ok = n["tests"] > 0 and n["failures"] == 0 and n["errors"] == 0 and n["skipped"] < n["tests"]
if not all(sys.argv[2] in c for c in cases):
    print("check_packaging: items that are not the example claim's: "
          + ", ".join(c for c in cases if sys.argv[2] not in c), file=sys.stderr)
    ok = False
sys.exit(0 if ok else 1)
EOF
[ -d "$RUN/pytest-out/results/$EXAMPLE_ID" ] || fail "pytest claims wrote no records under $RUN/pytest-out/results/$EXAMPLE_ID"

log "rnnclaims run --profile smoke --claims $EXAMPLE_ID --strict"
"$BIN/rnnclaims" run --profile smoke --claims "$EXAMPLE_ID" --out "$RUN/report" --strict --workers 1 \
    > run.txt 2>&1 || { cat run.txt; fail "rnnclaims run --strict exited non-zero"; }
cat run.txt
[ -f "$RUN/report/index.html" ] || fail "rnnclaims run wrote no $RUN/report/index.html"
grep -q "$EXAMPLE_ID" "$RUN/report/index.html" || fail "the report index.html does not mention $EXAMPLE_ID"
log "the report names $EXAMPLE_ID"
# The claim's own figure (Claim.figures). REQUIRE_CLAIM_FIGURE=auto (default) requires it once the
# installed report draws Claim.figures (reports.figures.resolve_figure exists); 1 always, 0 never.
want_fig=${REQUIRE_CLAIM_FIGURE:-auto}
if [ "$want_fig" = auto ]; then
    "$PY" -c "import reports.figures as f, sys; sys.exit(0 if hasattr(f, 'resolve_figure') else 1)" 2>/dev/null \
        && want_fig=1 || want_fig=0
fi
if grep -q "data-fig=\"$EXAMPLE_ID/ratio-per-layer\"" "$RUN/report/index.html"; then
    log "the report shows the example's own figure (ratio-per-layer)"
elif [ "$want_fig" = 1 ]; then
    grep -o "[^<>]*figure omitted[^<>]*" "$RUN/report/index.html" | head -n 3 >&2 || true
    fail "the report does not show $EXAMPLE_ID's own figure (Claim.figures: ratio-per-layer)"
else
    log "note: this report does not draw Claim.figures yet; the example's figure is not checked"
fi
