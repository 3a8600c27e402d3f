"""``pytest claims``: one pytest item per (claim, cell) of the chosen profile.

The profile comes from ``--claims-profile`` (or ``RNNCLAIMS_PROFILE``, default ``smoke``), the claim set
from ``RNNCLAIMS_REGISTRY`` (default: the catalogue). Each item runs :func:`claims.runner.run_cell`,
writes the record under ``<claims-out>/results/`` and attaches it to the report (``user_properties``),
so the controlling process can gather records from xdist workers (see the root conftest.py).

Assertions per cell: no cell ends in ``error``; a control cell never ``holds``; a cell for which
``claim.must_hold(cell, profile)`` is true must ``hold``. Other verdicts (a finite-width claim failing at
small width, say) are findings for the report, not test failures. An empty catalogue, or one that does
not import, gives a single failing item: ``pytest claims`` never passes silently.
"""

from __future__ import annotations

import json

import pytest

from claims.base import cell_key
from claims.profiles import get_profile
from claims.store import json_safe, write_record

RECORD_PROPERTY = "rnnclaims_record"


def _cell_id(claim_id: str, cell: dict) -> str:
    parts = []
    for name in sorted(cell):
        if name == "control":
            if cell[name]:
                parts.append("control")
            continue
        value = cell[name]
        if isinstance(value, (list, tuple)):
            value = "-".join(str(v) for v in value)
        elif isinstance(value, float):
            value = f"{value:g}"
        parts.append(f"{name}={value}")
    return "-".join([claim_id, *parts])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "claim_cell" not in metafunc.fixturenames:
        return
    from claims.registry import resolve_registry

    try:
        profile = get_profile(metafunc.config.getoption("--claims-profile"))
        registry = resolve_registry()
        params = [(claim.id, cell) for claim in registry.claims() for cell in claim.cells(profile)]
        problem = None if params else f"no claims registered in {registry.spec!r}"
    except Exception as exc:  # surfaces as one failing item rather than vanishing
        params, problem = [], f"{type(exc).__name__}: {exc}"
    if problem is not None:
        metafunc.parametrize("claim_cell", [(None, problem)], ids=["no-claims"])
        return
    metafunc.parametrize("claim_cell", params, ids=[_cell_id(cid, cell) for cid, cell in params])


def test_cell(claim_cell, device, request: pytest.FixtureRequest) -> None:
    claim_id, cell = claim_cell
    if claim_id is None:
        pytest.fail(cell)
    from claims.registry import resolve_registry
    from claims.runner import run_cell
    from conftest import claims_results_dir

    profile = get_profile(request.config.getoption("--claims-profile"))
    claim = resolve_registry().get(claim_id)
    record = run_cell(claim, cell, profile, device=device)
    write_record(claims_results_dir(request.config), record)
    request.node.user_properties.append((RECORD_PROPERTY, json.dumps(json_safe(record))))

    where = f"{claim.id} {cell_key(cell)}"
    if record["verdict"] == "skipped":
        pytest.skip(f"{where}: {record['message']}")
    assert record["verdict"] != "error", f"{where}: error: {record['message']}"
    if record["control"]:
        assert record["verdict"] != "holds", (
            f"{where}: the negative control holds (failures {record['failures']}/{record['examples']}); "
            "the check cannot tell broken from working"
        )
    elif record["must_hold"]:
        assert record["verdict"] == "holds", (
            f"{where}: expected to hold, got {record['verdict']} (failures {record['failures']}/"
            f"{record['examples']}, worst margin {record['margin']}, failing recipe {record['failing_recipe']})"
        )
