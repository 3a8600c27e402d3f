"""PERT: the batched measurement equals an independent recomputation; the bounds and the control can fail."""

from __future__ import annotations

import math

import pytest
import torch

import rnn_core
from claims.base import Context
from claims.catalogue import pert
from claims.profiles import get_profile
from rnn_core.data import Recipe, TargetSpec, make_inputs


def _f_explicit(W, A, B, x, activation="relu"):
    """f(x) by an explicit loop over time (autograd-friendly), and the list of h_l, g_l."""
    m = W.shape[0]
    h = torch.zeros(m, dtype=W.dtype)
    hs, gs = [], []
    for l in range(x.shape[0]):
        g = W @ h + A @ x[l]
        h = torch.relu(g) if activation == "relu" else (g > 0).to(W.dtype)
        hs.append(h)
        gs.append(g)
    return B @ h, hs, gs


def _grad_autograd(W, A, B, x):
    Wr = W.clone().requires_grad_(True)
    f, _, _ = _f_explicit(Wr, A, B, x)
    (G,) = torch.autograd.grad(f, Wr)
    return G


def _direct_stats(p, x, Delta, activation="relu"):
    """The four statistics for one sequence and one explicit Delta, by loops, autograd and m x m matrices."""
    W, A, B = p.W, p.A, p.B
    Wp = W + Delta
    f0, hs0, gs0 = _f_explicit(W, A, B, x, activation)
    f1, hs1, gs1 = _f_explicit(Wp, A, B, x, activation)
    r_h = 0.0
    flips = 0.0
    for h0, h1, g0, g1 in zip(hs0, hs1, gs0, gs1):
        n0 = float(h0.norm())
        dn = float((h1 - h0).norm())
        r_h = max(r_h, dn / n0 if n0 > 0 else (0.0 if dn == 0 else math.inf))
        flips = max(flips, sum(int((a > 0) != (b > 0)) for a, b in zip(g0.tolist(), g1.tolist())) / W.shape[0])
    if activation == "relu":
        G0 = _grad_autograd(W, A, B, x)
        G1 = _grad_autograd(Wp, A, B, x)
    else:  # step: derivative 0 almost everywhere
        G0 = torch.zeros_like(W)
        G1 = torch.zeros_like(W)
    g0n = float(G0.norm())
    dg = float((G1 - G0).norm())
    r_g = dg / g0n if g0n > 0 else (0.0 if dg == 0 else math.inf)
    num = abs(float(f1 - f0 - (G0 * Delta).sum()))
    den = g0n * float(Delta.norm())
    fo = num / den if den > 0 else (0.0 if num == 0 else math.inf)
    return {"r_h": r_h, "flips": flips, "r_g": r_g, "first_order": fo}


def _close(a, b, rtol):
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-14


@pytest.mark.parametrize("regime", ["unit", "unnormalized", "normalized"])
def test_batched_statistics_equal_direct_recomputation(regime):
    m, L, d, n = 24, 4, 3, 2
    X = make_inputs(n, L, d, regime=regime, seed=3)
    p = rnn_core.init_params(m, d, seed=5)
    omegas = [1e-3, 3e-2, 0.3]  # 0.3 makes sure some units flip, so the flip/jump paths are exercised
    rows, dirs = pert.perturbation_rows(p, X, omegas, seed=11)
    assert len(rows) == len(omegas) * 2 * n
    # the random direction has unit spectral norm (exact SVD at this width)
    assert float(torch.linalg.matrix_norm(dirs.R, ord=2)) == pytest.approx(1.0, rel=1e-12)
    flipped = 0
    for row in rows:
        i, w = row["i"], row["omega"]
        if row["direction"] == "random":
            Delta = w * dirs.R
        else:
            Delta = w * torch.outer(dirs.U[i], dirs.V[i])
        direct = _direct_stats(p, X[i], Delta)
        for stat in pert.STATS:
            # float64 along two different code paths (batched structured vs explicit loops/autograd):
            # agreement to 1e-8 relative; first_order is a difference of O(1) outputs that is itself
            # small (~omega^2), so it keeps fewer digits
            tol = 1e-6 if stat == "first_order" else 1e-8
            assert _close(row[stat], direct[stat], tol), (row, stat, direct[stat])
        flipped += row["flips"] > 0
    assert flipped > 0, "the test should exercise sign flips"


def test_adversarial_direction_is_top_singular_pair_of_gradient():
    m, L, d, n = 20, 5, 3, 2
    X = make_inputs(n, L, d, regime="unit", seed=1)
    p = rnn_core.init_params(m, d, seed=2)
    _, dirs = pert.perturbation_rows(p, X, [1e-3], seed=0)
    for i in range(n):
        G = _grad_autograd(p.W, p.A, p.B, X[i])
        s = torch.linalg.svdvals(G)
        assert float(dirs.sigma[i]) == pytest.approx(float(s[0]), rel=1e-10)
        assert float(dirs.U[i] @ G @ dirs.V[i]) == pytest.approx(float(s[0]), rel=1e-10)
        assert float(dirs.U[i].norm()) == pytest.approx(1.0, rel=1e-12)
        assert float(dirs.V[i].norm()) == pytest.approx(1.0, rel=1e-12)
        # rank <= L - 1 (h_0 = 0): the structured SVD is exact, not an approximation
        assert int((s > 1e-10 * s[0]).sum()) <= L - 1


def test_lanczos_norm_is_a_tight_lower_bound():
    Z = torch.randn(300, 300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = float(torch.linalg.matrix_norm(Z, ord=2))
    est = pert.lanczos_spectral_norm(Z, 20, seed=1)
    assert est <= exact * (1 + 1e-12)  # a Ritz value never exceeds the top eigenvalue
    assert est >= exact * (1 - 1e-3)


def test_zero_input_sequence_is_guarded():
    m, L, d = 16, 3, 2
    X = make_inputs(2, L, d, regime="unit", seed=0)
    X[1] = 0.0  # h_l = 0 for every l, and grad_W f = 0
    p = rnn_core.init_params(m, d, seed=0)
    rows, _ = pert.perturbation_rows(p, X, [1e-2, 1e-1], seed=0)
    for row in rows:
        for stat in pert.STATS:
            assert not math.isnan(row[stat])
        if row["i"] == 1:  # h' = h = 0 and f' = f = 0: 0 / 0 is "no change"
            assert row["r_h"] == 0.0 and row["r_g"] == 0.0 and row["first_order"] == 0.0


def test_summary_detects_violations_and_measures_constants():
    L = 2
    rows = [
        {"omega": w, "direction": dname, "i": 0, "r_h": 0.5 * w * L, "flips": 0.0, "r_g": 0.1 * (w * L) ** 0.5,
         "first_order": 0.01}
        for w in (1e-3, 1e-2, 1e-1) for dname in ("random", "adversarial")
    ]
    s = pert.summarize(rows, (1e-3, 1e-2, 1e-1), L)
    assert s["ok"]
    assert s["constants"]["r_h"] == pytest.approx(0.5)
    assert s["slopes"]["r_h"] == pytest.approx(1.0)
    assert s["slopes"]["r_g"] == pytest.approx(0.5)
    assert math.isnan(s["slopes"]["flips"])  # no positive points
    worst = s["worst_rows"]["r_h"]
    assert worst["r_h"] / pert.bound("r_h", worst["omega"], L) == pytest.approx(0.125)
    rows[0]["r_h"] = 5.0 * 1e-3 * L  # above 4 omega L
    s = pert.summarize(rows, (1e-3, 1e-2, 1e-1), L)
    assert not s["ok"]
    assert s["constants"]["r_h"] == pytest.approx(5.0)
    assert s["margin"] == pytest.approx(5.0 / 4.0)
    reason = pert.violation_reason(s, L)
    assert reason.startswith("r_h = 0.01 > 4 (omega L)^1 = 0.008 at omega = 0.001 (random, x_0)"), reason
    assert "r_g" not in reason and "flips" not in reason  # only the statistics that exceeded their bounds
    rows[0]["r_h"] = math.nan  # an undefined statistic never passes
    assert not pert.summarize(rows, (1e-3, 1e-2, 1e-1), L)["ok"]


def test_cells_controls_and_must_hold():
    for name in ("smoke", "quick"):
        profile = get_profile(name)
        cells = pert.CLAIM.cells(profile)
        controls = [c for c in cells if c.get("control")]
        assert {c["regime"] for c in controls} == set(profile.regimes)
        assert all(c["L"] == pert.CONTROL_L and c["omegas"] == list(pert.CONTROL_OMEGAS) for c in controls)
        assert all(c["m"] == profile.max_width and "activation" not in c for c in controls)
        held = [c for c in cells if pert.CLAIM.must_hold(c, profile)]
        # every length at the largest width: a wrong backward pass shows only from L = 3 on
        assert held and all(c["m"] == profile.max_width for c in held)
        assert {c["L"] for c in held} == set(profile.lengths)
        assert not any(pert.CLAIM.must_hold(c, profile) for c in controls)


def _recipe(L, regime, seed=0, d=3):
    return Recipe(n=2, L=L, d=d, regime=regime, target=TargetSpec(family="random", seed=0),
                  data_seed=seed, init_seed=seed)


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_paper_init_holds_at_length_two(regime):
    ctx = Context(device=torch.device("cpu"), profile=get_profile("smoke"))
    out = pert.CLAIM.evaluate({"m": 256, "L": 2, "regime": regime}, _recipe(2, regime, seed=7), ctx)
    assert out.ok is True and out.margin < 1.0 and out.reason == ""


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_control_fails_through_the_statistics_with_a_nonzero_finite_gradient(regime):
    # omega in {1, 2, 4} at L = 16: the recurrence itself changes, so r_g / r_h exceed their bounds. Not a
    # division by zero: ||G(x)||_2 > 0 for every sequence and every statistic is finite.
    profile = get_profile("smoke")
    ctx = Context(device=torch.device("cpu"), profile=profile)
    cell = next(c for c in pert.CLAIM.cells(profile) if c.get("control") and c["regime"] == regime)
    for seed in (1, 2):
        out = pert.CLAIM.evaluate(cell, _recipe(cell["L"], regime, seed=seed), ctx)
        assert out.ok is False
        assert out.measured["infinite_values"] == 0
        assert out.measured["grad_norm_min"] > 0.0
        assert math.isfinite(out.margin) and out.margin > 1.0
        first = out.reason.split(" ")[0]
        assert first in ("r_h", "flips", "r_g"), out.reason
        assert out.measured[f"margin_{first}"] > 1.0


def test_omega_one_passes_at_short_length():
    # Why the control needs the long length: at L = 4 the bounds at omega = 1 are >= 4 (omega L)^(1/3)
    # and omega = 1 does not violate them.
    ctx = Context(device=torch.device("cpu"), profile=get_profile("smoke"))
    cell = {"m": 256, "L": 4, "regime": "unit", "omegas": [1.0]}
    out = pert.CLAIM.evaluate(cell, _recipe(4, "unit", seed=3), ctx)
    assert out.ok is True


def test_statistics_come_from_the_core_pass():
    # pert keeps no perturbed pass of its own: rows equal rnn_core.perturbation_statistics on the same
    # directions.
    m, L, d, n = 32, 3, 3, 2
    X = make_inputs(n, L, d, regime="unit", seed=9)
    p = rnn_core.init_params(m, d, seed=4)
    rows, dirs = pert.perturbation_rows(p, X, [1e-2], seed=5)
    S = rnn_core.perturbation_statistics(p, X, 1e-2, R=dirs.R)
    for row in rows:
        if row["direction"] == "random":
            assert row["r_g"] == pytest.approx(float(S.r_g[row["i"]]), rel=1e-12)
            assert row["r_h"] == pytest.approx(float(S.r_h[row["i"]]), rel=1e-12)
    assert not hasattr(pert, "_perturbed_pass") and not hasattr(pert, "log_slope")


def test_a_backward_fault_moves_the_network_and_its_perturbation_alike(monkeypatch):
    # The audit's fault "backward-w-not-transposed" (delta_l = D_l W delta_{l+1}) edits the one backward
    # step of rnn_core's pass, which the network and its perturbations share: G and G' are both the wrong
    # gradient, so r_g does not move (a perturbed network with a backward pass of its own would disagree
    # with the faulty G at O(1)). The first-order error sees it: f' - f no longer matches <G, Delta>, so
    # it stops vanishing with omega (slope ~1 -> ~0) and grows 28x here, yet stays below the declared
    # c = 4 at this cell; the fault is NTK-ID's to catch (tests/test_claim_ntk_id.py).
    import rnn_core.model as model

    real_step = model._back_through_W

    def wrong(delta_next, W, out):
        real_step(delta_next, W.T, out)

    ctx = Context(device=torch.device("cpu"), profile=get_profile("smoke"))
    cell = {"m": 256, "L": 4, "regime": "unit"}
    good = pert.CLAIM.evaluate(cell, _recipe(4, "unit", seed=3), ctx)
    monkeypatch.setattr(model, "_back_through_W", wrong)
    faulty = pert.CLAIM.evaluate(cell, _recipe(4, "unit", seed=3), ctx)
    assert good.ok is True and faulty.ok is True
    before, after = good.measured, faulty.measured
    assert abs(after["constant_r_g"] - before["constant_r_g"]) < 0.2 * before["constant_r_g"]
    assert after["constant_first_order"] > 10 * before["constant_first_order"]
    assert after["slope_first_order"] < 0.5 < before["slope_first_order"]


def test_the_rule_applies_below_omega_l_one_and_records_the_rest_as_probes():
    # The bounds are first-order in omega L; past omega L = 1 a perturbation compounds over the recurrence.
    # Standard grid at L = 64: omega = 0.1 is omega L = 6.4. This recipe's adversarial direction there
    # blows the hidden states up (r_h ~ 290 against a bound 25.6; the standard run saw 3 of 4 examples
    # of its L = 64, m = 8192 normalized cell exceed r_g's bound at omega = 0.1 and no other omega), while
    # every statistic stays within its bound at omega <= 0.01 (omega L <= 0.64).
    profile = get_profile("standard")
    rule, probe = pert._omegas({"m": 256, "L": 64, "regime": "normalized"}, profile)
    assert rule == (1e-4, 1e-3, 1e-2) and probe == [0.1]
    assert pert._omegas({"m": 256, "L": 8, "regime": "normalized"}, profile) == ((1e-4, 1e-3, 1e-2, 1e-1), [])
    ctx = Context(device=torch.device("cpu"), profile=profile)
    out = pert.CLAIM.evaluate({"m": 256, "L": 64, "regime": "normalized"}, _recipe(64, "normalized", seed=2), ctx)
    assert out.ok is True and out.margin < 1.0
    assert out.measured["outside_margin_r_h"] > 1.0  # recorded, not judged
    assert {r["omega"] for r in out.series if not r["in_grid"]} == {0.1}


def test_every_cell_of_every_profile_keeps_two_omegas_in_the_near_initialization_regime():
    from claims.profiles import PROFILES

    for profile in PROFILES.values():
        for cell in pert.CLAIM.cells(profile):
            rule, probe = pert._omegas(cell, profile)
            if cell.get("control"):
                assert rule == pert.CONTROL_OMEGAS and probe == []
                continue
            assert len(rule) >= 2 and all(w * cell["L"] < 1 for w in rule), (profile.name, cell)
            assert all(w * cell["L"] >= 1 or w == 1.0 for w in probe), (profile.name, cell)


def test_search_cells_one_per_statistic_at_the_largest_rule_omega_are_findings():
    for name in ("smoke", "quick", "standard"):
        profile = get_profile(name)
        search = [c for c in pert.CLAIM.cells(profile) if c.get("kind") == "search"]
        assert search and {c["stat"] for c in search} <= set(pert.STATS)
        for c in search:
            rule, _ = pert._omegas(c, profile)
            assert c["omega"] == max(rule) and c["omega"] * c["L"] < 1
            assert not pert.CLAIM.must_hold(c, profile)
    assert {c["stat"] for c in pert.search_cells(get_profile("quick"))} == set(pert.STATS)
