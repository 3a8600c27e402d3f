"""``pytest claims``: one pytest item per (claim, cell) of the chosen profile.

The options (``--claims-profile``, ``--claims-seed``, ``--claims-dtype``, ``--claims-registry``,
``--device``) and the record collection come from the rnn-claims pytest plugin
(:mod:`claims.pytest_plugin`). Each item runs :func:`claims.runner.run_cell` and attaches its record to
the report, so the controlling process can gather records from xdist workers.

Assertions per cell, the ``--strict`` semantics of ``rnnclaims run``: no cell ends in ``error``; a
control cell ends ``fails`` (not ``inconclusive``: a control that cannot fail did not work); a cell the
claim asserts (``must_hold`` true) ends ``holds``. Other verdicts are findings for the report, not test
failures. An empty catalogue, or one that does not import, gives a single failing item:
``pytest claims`` never passes silently.
"""

from __future__ import annotations

import json

import pytest

from claims.pytest_plugin import RECORD_PROPERTY, cell_test_id, claims_options
from claims.schema import cell_key, json_safe


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "claim_cell" not in metafunc.fixturenames:
        return
    from claims.registry import resolve_registry

    try:
        opts = claims_options(metafunc.config)
        registry = resolve_registry(opts["registry"])
        params = [(claim.id, cell) for claim in registry.claims() for cell in claim.cells(opts["profile"])]
        problem = None if params else f"no claims registered in {registry.spec!r}"
    except pytest.UsageError:
        raise
    except Exception as exc:  # surfaces as one failing item rather than vanishing
        params, problem = [], f"{type(exc).__name__}: {exc}"
    if problem is not None:
        metafunc.parametrize("claim_cell", [(None, problem)], ids=["no-claims"])
        return
    metafunc.parametrize("claim_cell", params, ids=[cell_test_id(cid, cell) for cid, cell in params])


def test_cell(claim_cell, device, request: pytest.FixtureRequest) -> None:
    claim_id, cell = claim_cell
    if claim_id is None:
        pytest.fail(cell)
    from claims.registry import resolve_registry
    from claims.runner import run_cell

    opts = claims_options(request.config)
    claim = resolve_registry(opts["registry"]).get(claim_id)
    record = run_cell(claim, cell, opts["profile"], device=device, seed=opts["seed"], dtype=opts["dtype"])
    request.node.user_properties.append((RECORD_PROPERTY, json.dumps(json_safe(record))))

    where = f"{claim.id} {cell_key(cell)}"
    if record["verdict"] == "skipped":
        pytest.skip(f"{where}: {record['message']}")
    assert record["verdict"] != "error", f"{where}: error: {record['message']}"
    if record["expect"] == "fails":
        assert record["verdict"] == "fails", (
            f"{where}: the negative control ended {record['verdict']} ({record['reason']}); a control must "
            "fail, or the check cannot tell broken from working")
    elif record["expect"] == "holds":
        assert record["verdict"] == "holds", (
            f"{where}: expected to hold, got {record['verdict']} ({record['reason']}; worst margin "
            f"{record['margin']}, failing recipe {record['failing_recipe']})")
