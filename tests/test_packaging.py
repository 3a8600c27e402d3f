"""Packaging: the example third-party catalogue (examples/rnn-claims-example), the files the wheel
must ship (LICENSE, py.typed). The end-to-end check from a fresh venv is scripts/check_packaging.sh;
these are the fast checks on the source tree (the example is imported from its folder, not installed).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rnn-claims-example"
SPEC = "rnn_claims_example.claims:REGISTRY"
EXAMPLE_ID = "LRELU-FWD"


@pytest.fixture(scope="module")
def example():
    """The example's claims module, imported from examples/rnn-claims-example."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(EXAMPLE))
        import rnn_claims_example.claims as module

        yield module


def test_registry_spec_resolves_to_the_example_claim(example):
    from claims.registry import Registry, resolve_registry

    reg = resolve_registry(SPEC)
    assert isinstance(reg, Registry)
    assert reg is example.REGISTRY
    assert reg.spec == SPEC  # what another process re-imports
    assert reg.ids() == [EXAMPLE_ID]


def test_example_pyproject_announces_the_registry():
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["rnn_claims.catalogues"] == {"example": SPEC}
    deps = sorted(d.split(">")[0].split("=")[0].strip() for d in meta["project"]["dependencies"])
    assert deps == ["rnn-claims", "torch"]
    assert (EXAMPLE / "README.md").is_file()


def test_claim_is_well_formed_under_every_builtin_profile(example):
    from claims.profiles import PROFILE_NAMES, get_profile

    claim = example.CLAIM
    for name in PROFILE_NAMES:
        profile = get_profile(name)
        cells = claim.cells(profile)
        controls = [c for c in cells if c.get("control")]
        asserted = [c for c in cells if claim.expectation(c, profile)[0] == "holds"]
        assert controls and asserted, name
        assert all(c["L"] >= 4 for c in controls)
        for cell in cells:
            assert claim.memory_bytes(cell, profile) > 8 * cell["m"] ** 2
            assert claim.cost(cell, profile) > 0
            assert claim.strategy(cell, profile) is not None
        assert any(claim.expectation(c, profile)[1] for c in cells if not c.get("control"))  # not asserted, why
    assert claim.figures and all(callable(f) for f in claim.figures)


def test_unknown_profile_raises_naming_it(example):
    from claims.profiles import Profile

    odd = Profile(name="odd", widths=(8,), lengths=(2,), regimes=("unit",), examples=3, shrink_budget=0,
                  n_default=2, d_default=2, n_max=8, description="not known to the example")
    with pytest.raises(ValueError, match="'odd'"):
        example.CLAIM.cells(odd)


def test_forward_ratios_match_a_direct_recomputation(example):
    a = 0.3
    W, A = example.init_weights(3, 2, example.preserving_variance(a), seed=5)
    X = torch.tensor([[[1.0, 0.0], [0.5, -2.0]]], dtype=torch.float64)
    h = torch.zeros(3, dtype=torch.float64)
    q = 0.0
    want = []
    for l in range(2):
        z = W @ h + A @ X[0, l]
        h = torch.where(z > 0, z, a * z)
        q += float(X[0, l] @ X[0, l])
        want.append(float(h @ h) / q)
    got = example.forward_ratios(W, A, X, a)[0].tolist()
    assert got == pytest.approx(want, rel=1e-12)


def test_preserving_variance_keeps_the_second_moment_and_relu_variance_grows_it(example):
    m, L, d = 1024, 6, 3
    X = torch.nn.functional.normalize(torch.randn(16, L, d, generator=torch.Generator().manual_seed(0),
                                                  dtype=torch.float64), dim=2)
    a = example.CONTROL_SLOPE
    W, A = example.init_weights(m, d, example.preserving_variance(a), seed=1)
    kept = example.forward_ratios(W, A, X, a).mean(dim=0)
    assert torch.all((kept - 1).abs() < 0.1), kept
    W, A = example.init_weights(m, d, example.RELU_VAR, seed=1)
    grown = example.forward_ratios(W, A, X, a).mean(dim=0)
    theory = [sum((1 + a * a) ** j for j in range(1, l + 1)) / l for l in range(1, L + 1)]
    assert grown.tolist() == pytest.approx(theory, rel=0.1)
    assert float(grown[-1]) > 2.0  # the unit regime leaves [1/2, 2] by l = 6


def _run(example, pick):
    from claims.runner import run_cell

    claim = example.CLAIM
    cells = [c for c in claim.cells("smoke") if pick(claim, c)]
    assert cells
    return run_cell(claim, cells[0], "smoke", device="cpu")


def test_control_fails_under_the_sequential_test(example):
    record = _run(example, lambda claim, c: c.get("control", False))
    assert record["expect"] == "fails"
    assert record["verdict"] == "fails", record["reason"]
    assert record["measured"]["c"]["min"] > 2.0


def test_a_must_hold_cell_holds_and_draws_its_figure(example):
    from claims.profiles import get_profile

    smoke = get_profile("smoke")
    record = _run(example, lambda claim, c: claim.expectation(c, smoke)[0] == "holds")
    assert record["expect"] == "holds"
    assert record["verdict"] == "holds", record["reason"]
    assert record["examples"] >= example.CLAIM.plan(smoke).min_examples_to_hold()
    rows = record["series"]
    assert {r["stat"] for r in rows} == {"min", "max"}
    assert all(0.5 <= r["ratio"] <= 2.0 for r in rows)

    # the figure lives beside the claim (Claim.figures), not in reports/
    assert example.CLAIM.figures[0].__module__ == "rnn_claims_example.figures"
    fig = example.CLAIM.figures[0](EXAMPLE_ID, [record], "smoke")
    assert "<svg" in fig.svg and fig.key == "ratio-per-layer" and EXAMPLE_ID in fig.title


def test_figure_reports_missing_without_series(example):
    from reports.figures import Missing

    with pytest.raises(Missing):
        example.CLAIM.figures[0](EXAMPLE_ID, [{"params": {"a": 0.2, "m": 64}, "series": [],
                                              "verdict": "holds", "control": False}], "smoke")


def test_license_and_py_typed_are_shipped():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the rnn-claims authors" in text
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = meta["tool"]["setuptools"]["package-data"]
    for package in ("claims", "rnn_core", "reports"):
        assert "py.typed" in data.get(package, []), package
        assert (ROOT / package / "py.typed").is_file(), package


@pytest.mark.parametrize("value", [math.nan, -1.0, 0.0])
def test_bad_variance_in_a_cell_is_refused(example, value):
    with pytest.raises(ValueError, match="variance"):
        example.variance({"a": 0.2, "v": value})
