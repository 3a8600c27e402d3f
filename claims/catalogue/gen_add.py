"""GEN-ADD: the generalization theorem for additive targets (Arora et al.'s bound, scale-free form).

Setting. Additive target y = sum_{l in S} f(beta_l^T X_l) (SPEC section 3), labels standardized on the
training set (the same affine map for the test labels). The RNN is trained exactly as in the LAZY claim
(claims/catalogue/_training.py: GD on W, squared loss, centered output, eta = 1/(m lambda_max(H_m(W_0))),
until Loss <= 1e-3 Loss_0 or the profile's step cap). With the clipped loss l(u, y) = min(1, |u - y|)
(bounded and 1-Lipschitz, as the theorem needs):

    train_loss = (1/n) sum_i l(f_c(W_T, x_i), y_i),
    test_loss  = mean of l over N_TEST = 2000 fresh test sequences (same input law, same target),
    B = 2 sqrt(y^T H_inf^-1 y * tr H_inf) / n + 3 sqrt(log(2/delta) / (2n)),   delta = 0.05.

B is the scale-free form of Arora, Du, Hu, Li, Wang (ICML 2019), sqrt(2 y^T H^-1 y / n): their H has
diagonal 1/2, so tr H = n/2 and 2 sqrt(y^T H^-1 y n/2) / n = sqrt(2 y^T H^-1 y / n); the trace makes B
invariant under H -> c H (the RNN's H_inf has diagonal (1/2) sum_{l<L} q_l, not 1/2). y^T H_inf^-1 y
uses rnn_core.linalg.scale_free_quadratic_form (Cholesky, relative jitter 1e-12 tr(H)/n).

Claim (one example = one recipe evaluated on a nested n grid, the first n training sequences of one
draw): at every n of the grid, test_loss <= train_loss + B. B >= 1 is VACUOUS (the clipped loss never
exceeds 1, so the inequality holds whatever the network does). Pass rule: ok = False if the inequality
fails at some n; ok = True if it holds at every n and B < 1 at some n; ok = None (inconclusive) when B >= 1
at every n of the grid, because then the check could not have failed. margin = max_n test / (train + B).
Recorded per example: test_loss, train_loss, B, vacuous at the largest n; n_nonvacuous (the smallest n
of the grid with B < 1; NaN when none); B_first_term; steps and capped of the largest-n run; the series
{"n", "test_loss", "train_loss", "B", "vacuous"} over the grid.

Targets per cell. B depends strongly on the target (measured with H_inf, d = 4, unit regime, L = 2:
f = z on X_1 gives B = 1.96, 1.02, 0.51 at n = 64, 256, 1024, while z^2 on every position gives 3.09,
2.87, 1.90). A cell therefore fixes f and the position set: "first" = the first INFORMATIVE position
(1; in the normalized regime 2, because X_1 = e_d is constant there and f(beta^T X_1) would be a
constant label) or "all" informative positions; hypothesis draws the seeds (data, init, beta) and the
direction family (sphere or gaussian). The input dimension is the profile's d_default.

Negative control (SPEC: labels replaced by random ones after computing B on the true ones). B is
computed on the TRUE labels of the training set; the labels (train and test) are then replaced by
independent N(0, 1) draws (standardized with the training map), a predictor is fitted to the random
training labels, and the same inequality is checked. A predictor that interpolates random labels has
train_loss ~ 0 and test_loss ~ E min(1, |u - y|) >= 0.63 (0.63 for u = 0), so the check fails wherever
B(true) is well below that: the control cells sit at n = 512 (unit) and n = 1024 (unnormalized), where
B(true) ~ 0.5 for f = z on the first position, d = 4, L = 2.

SPEC correction (the control's predictor). The SPEC asks for the trained RNN (as LAZY) in the control.
Measured: with the LAZY step the RNN does not memorize random labels in any CPU budget. At n = 512,
L = 2, d = 4, unit, m = 64, the clipped training loss on random labels goes 0.63 -> 0.52 after 3000
steps and 0.40 after 20000 steps (51 s), test loss 0.68, B(true) = 0.51: train + B = 0.91 > 0.68, so
the check HOLDS and the control cannot fail (the RNN is also slower than its linearization, which
predicts 0.03 after 3000 steps; at n = 128, m = 1024 the loss after 300 steps is 4.7 against a
linearized 1.3). With B(true) < 1 only for n >= ~256 and the LAZY step fixed at 1/(m lambda_max) with
lambda_max ~ n mean(H), memorization needs far more steps than any profile can afford. The control
therefore uses, by default, the T -> infinity limit of the same network's lazy dynamics: the linearized
interpolant f_lin(x) = H_m(x, X) H_m(X, X)^-1 y at W_0 (_training.ntk_interpolant, kernel regression
with the empirical NTK, float64, relative jitter 1e-12). It interpolates the random labels and so tests
exactly what the control is for: whether a predictor that fits noise can satisfy the inequality with
B computed on the true labels (it cannot: the check fails). The record says which predictor was used
("predictor": "ntk"); a control cell with "predictor": "rnn" trains the network instead (not in the
CPU profiles, where it would come out "holds" for the reason above).

Profiles (per-claim grids in SETTINGS; one width per profile, as the SPEC allows). A cell's n grid is
nested (the first n sequences of one draw of max(grid) sequences). In smoke and quick the training is
skipped when B >= 1 at EVERY n of the cell's grid (the example is then inconclusive whatever the network
does; ``trained`` = False, losses NaN); standard and full train everywhere.
- smoke: m = 64; L in {2, 4}; n grid (64,), at L = 2 (64, 256); f = z on the first position; step cap
  150; controls (m = 64) at n = 512 (unit) and 1024 (unnormalized).
- quick: m = 128; L in {2, 4, 8}; n grid (64, 256), at L = 2 (64, 256, 512); f = z on the first
  position; step cap 300. B < 1 needs n ~ 1000 at L = 4 (measured B = 1.21 at n = 256, 0.61 at
  n = 1024, d = 4, unit), beyond what quick can train, so the L >= 4 cells report B only.
- standard: m = 1024; L in {2, 4, 8, 16}; n grid (64 .. 1024); targets z first, z^2 all, sin all;
  step cap 2000; a normalized-regime control at n = 4096.
- full: m = 4096; L up to 32; n grid up to 4096; step cap 5000.
must_hold: the non-control cells at L = 2 with f = z on the first position in the unit and
unnormalized regimes (where the grid reaches B < 1). In the normalized regime (eps = 0.05) B stays
vacuous up to n = 1024 (e.g. 2.49 at n = 256, 1.22 at n = 1024 for z on X_2, d = 4): the small-norm
condition makes the informative part of the kernel O(eps^2) against the constant X_1 = e_d part, which
is the paper's point against that normalization; such cells come out inconclusive.

Measured (smoke, m = 64, L = 2, n = 256, 5 examples per cell): unit B = 0.73, train 0.05, test 0.087
(margin test / (train + B) <= 0.14); unnormalized B = 0.79, train 0.04, test 0.08; controls: test 0.79
and 0.85 against train 0 + B(true) 0.52 and 0.47 (margins 1.6 and 2.5, B on the random labels 5.5 and
15.8). quick (m = 128, L = 2, n = 512): unit B = 0.49, train 0.036, test 0.052, smallest non-vacuous
n = 256; unnormalized B = 0.59, train 0.034, test 0.055, smallest non-vacuous n = 256 (one draw 512);
worst margins 0.11 and 0.094: the bound holds with about a 10x slack. Controls fail with margins 1.5
(unit, n = 512) and 2.1 (unnormalized, n = 1024).
"""

from __future__ import annotations

import math

import torch

from claims.base import Claim, Context, Outcome, finite_or_nan
from claims.registry import register

__all__ = ["CLAIM", "SETTINGS", "N_TEST", "DELTA", "generalization_bound", "informative_positions"]

#: fresh test sequences per example (SPEC: at least 2000)
N_TEST = 2000
#: the confidence parameter delta of the bound (SPEC)
DELTA = 0.05

SETTINGS: dict[str, dict] = {
    "smoke": {
        "m": 64,
        "lengths": (2, 4),
        "n_grid": (64,),
        "n_grid_L2": (64, 256),
        "targets": (("z", "first"),),
        "targets_L2": (),
        "steps": 150,
        "train_when_vacuous": False,
        "controls": (("unit", 512), ("unnormalized", 1024)),
    },
    "quick": {
        "m": 128,
        "lengths": (2, 4, 8),
        "n_grid": (64, 256),
        "n_grid_L2": (64, 256, 512),
        "targets": (("z", "first"),),
        "targets_L2": (),
        "steps": 300,
        "train_when_vacuous": False,
        "controls": (("unit", 512), ("unnormalized", 1024)),
    },
    "standard": {
        "m": 1024,
        "lengths": (2, 4, 8, 16),
        "n_grid": (64, 128, 256, 512, 1024),
        "n_grid_L2": (64, 128, 256, 512, 1024),
        "targets": (("z", "first"), ("z2", "all"), ("sin", "all")),
        "targets_L2": (),
        "steps": 2000,
        "train_when_vacuous": True,
        "controls": (("unit", 512), ("unnormalized", 1024), ("normalized", 4096)),
    },
    "full": {
        "m": 4096,
        "lengths": (2, 4, 8, 16, 32),
        "n_grid": (64, 256, 1024, 4096),
        "n_grid_L2": (64, 256, 1024, 4096),
        "targets": (("z", "first"), ("z2", "all"), ("sin", "all")),
        "targets_L2": (),
        "steps": 5000,
        "train_when_vacuous": True,
        "controls": (("unit", 512), ("unnormalized", 1024), ("normalized", 4096)),
    },
}

#: the control's length and target (where B(true) is smallest at a given n; see the module docstring)
CONTROL_L = 2
CONTROL_TARGET = ("z", "first")


def _settings(profile) -> dict:
    name = getattr(profile, "name", profile)
    return SETTINGS.get(name, SETTINGS["quick"])


def informative_positions(kind: str, L: int, regime: str) -> tuple[int, ...]:
    """1-based positions of a target kind: "first" -> (l0,), "all" -> (l0, ..., L), l0 = 2 in the
    normalized regime (X_1 = e_d is the same for every sequence there) and 1 otherwise."""
    l0 = 2 if regime == "normalized" else 1
    if L < l0:
        raise ValueError(f"L = {L} has no informative position in the {regime} regime")
    if kind == "first":
        return (l0,)
    if kind == "all":
        return tuple(range(l0, L + 1))
    raise ValueError(f"position kind must be 'first' or 'all', got {kind!r}")


def generalization_bound(H_inf, y, *, delta: float = DELTA) -> tuple[float, float]:
    """(B, first term) with B = 2 sqrt(y^T H^-1 y * tr H) / n + 3 sqrt(log(2/delta) / (2n)).

    y^T H^-1 y tr H / n is rnn_core.linalg.scale_free_quadratic_form (Cholesky, relative jitter 1e-12)."""
    from rnn_core.linalg import scale_free_quadratic_form

    y = torch.as_tensor(y, dtype=torch.float64)
    n = y.shape[0]
    if n < 1:
        raise ValueError("the bound needs at least one training label")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    sfq = scale_free_quadratic_form(H_inf, y)  # = y^T H^-1 y * tr H / n
    first = 2.0 * math.sqrt(max(sfq, 0.0) * n) / n
    return first + 3.0 * math.sqrt(math.log(2.0 / delta) / (2.0 * n)), first


# ---------------------------------------------------------------------------------------------------
# cells and strategy
# ---------------------------------------------------------------------------------------------------


def _cells(profile) -> list[dict]:
    s = _settings(profile)
    cells = []
    for regime in profile.regimes:
        for L in s["lengths"]:
            targets = list(s["targets"]) + (list(s["targets_L2"]) if L == 2 else [])
            for f, kind in targets:
                cells.append({"m": s["m"], "L": L, "regime": regime, "f": f, "positions": kind})
    for regime, n in s["controls"]:
        if regime in profile.regimes:
            f, kind = CONTROL_TARGET
            cells.append(
                {"m": s["m"], "L": CONTROL_L, "regime": regime, "f": f, "positions": kind, "n": n,
                 "predictor": "ntk", "control": True}
            )
    return cells


def _n_grid(cell: dict, profile) -> tuple[int, ...]:
    if "n" in cell:
        return (int(cell["n"]),)
    s = _settings(profile)
    return tuple(s["n_grid_L2"] if cell["L"] == 2 else s["n_grid"])


def _target_spec(cell: dict, seed):
    from rnn_core.targets import TargetSpec

    return TargetSpec(
        family="additive",
        f=cell["f"],
        positions=informative_positions(cell["positions"], int(cell["L"]), cell["regime"]),
        seed=seed,
    )


def _strategy(cell: dict, profile):
    from hypothesis import strategies as st

    from claims.strategies import SEEDS, recipes

    return recipes(
        n=max(_n_grid(cell, profile)),
        L=int(cell["L"]),
        d=profile.d_default,
        regime=cell["regime"],
        directions=st.sampled_from(("sphere", "gaussian")),
        target=SEEDS.map(lambda sd: _target_spec(cell, sd)),
        separation_floor=0.0,
    )


# ---------------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------------


def _random_labels(recipe, X, X_test, seed_offset: int = 1):
    """Independent N(0, 1) labels for the training and test inputs (rnn_core's random-label target)."""
    from rnn_core.targets import TargetSpec, make_target

    spec = TargetSpec(family="random", seed=(recipe.target.seed + seed_offset) % (2**31))
    t = make_target(spec, recipe.L, recipe.d)
    return t(X), t(X_test)


def evaluate_grid(cell: dict, recipe, ctx: Context, n_grid, *, steps: int, train_when_vacuous: bool = True) -> list[dict]:
    """One row per n of the grid: B on the true labels, and train / test loss of the fitted predictor.

    Control cells (cell["control"]) fit random labels after B is computed (predictor "ntk" or "rnn").
    train_when_vacuous=False skips the training (losses NaN, "trained": False) when B >= 1 at EVERY n of
    the grid: the example is then inconclusive whatever the network does, so the CPU profiles save the
    time."""
    import rnn_core
    from claims.catalogue._training import clipped_loss, ntk_interpolant, predict, train_as_lazy
    from rnn_core.data import make_dataset
    from rnn_core.targets import Standardizer

    control = bool(cell.get("control", False))
    predictor = cell.get("predictor", "rnn") if control else "rnn"
    if predictor not in ("rnn", "ntk"):
        raise ValueError(f"predictor must be 'rnn' or 'ntk', got {predictor!r}")
    m = int(cell["m"])
    n_max = max(n_grid)
    if recipe.n < n_max:
        raise ValueError(f"the recipe has n = {recipe.n} sequences, the grid needs {n_max}")
    X_all, y_all = make_dataset(recipe)
    X_test, y_test_raw = make_dataset(recipe, split="test", n=N_TEST)
    H_all = rnn_core.infinite_ntk(X_all[:n_max]).to(device="cpu", dtype=torch.float64)
    if control:
        yr_all, yr_test = _random_labels(recipe, X_all[:n_max], X_test)
    bounds = {}
    for n in sorted(n_grid):
        s = Standardizer.fit(y_all[:n])
        bounds[n] = (s, *generalization_bound(H_all[:n, :n], s(y_all[:n])))  # on the TRUE labels
    train = train_when_vacuous or control or any(B < 1.0 for _, B, _ in bounds.values())
    rows = []
    for n in sorted(n_grid):
        X = X_all[:n]
        s, B, first = bounds[n]
        y = s(y_all[:n])
        y_test = s(y_test_raw)
        row = {"n": int(n), "B": B, "B_first_term": first, "vacuous": bool(B >= 1.0), "trained": bool(train)}
        if control:
            yr = yr_all[:n]
            row["B_random"] = generalization_bound(H_all[:n, :n], Standardizer.fit(yr)(yr))[0]
            s = Standardizer.fit(yr)
            y = s(yr)
            y_test = s(yr_test)
        if not train:
            row.update(steps=0, capped=False, loss_ratio=math.nan, train_loss=math.nan, test_loss=math.nan, ok=True)
            rows.append(row)
            continue
        p0 = rnn_core.init_params(m, recipe.d, seed=recipe.init_seed, device=ctx.device, dtype=ctx.dtype)
        if predictor == "ntk":
            u_train, u_test = ntk_interpolant(p0, X, y, X_test)
            row.update(steps=0, capped=False, loss_ratio=math.nan)
        else:
            fit = train_as_lazy(p0, X, y, steps=steps)
            u_train, u_test = predict(fit, None, X), predict(fit, None, X_test)
            row.update(steps=fit.steps, capped=fit.capped, loss_ratio=fit.loss_ratio)
        row["train_loss"] = clipped_loss(u_train, y)
        row["test_loss"] = clipped_loss(u_test, y_test)
        row["ok"] = bool(row["test_loss"] <= row["train_loss"] + B)
        rows.append(row)
    return rows


def outcome_from_rows(rows: list[dict]) -> Outcome:
    """The pass rule of the module docstring applied to the per-n rows of one example."""
    if not rows:
        raise ValueError("no rows")
    if any(not r["ok"] for r in rows):
        ok = False
    elif all(r["vacuous"] for r in rows):
        ok = None  # B >= 1 everywhere: the inequality could not have failed
    else:
        ok = True
    ratios = []
    for r in rows:
        if not r.get("trained", True):
            continue
        rhs = r["train_loss"] + r["B"]
        ratios.append(r["test_loss"] / rhs if rhs > 0 else (0.0 if r["test_loss"] == 0 else math.inf))
    margin = max(ratios) if ratios else math.nan
    last = rows[-1]
    nonvac = [r["n"] for r in rows if not r["vacuous"]]
    measured = {
        "test_loss": last["test_loss"],
        "train_loss": last["train_loss"],
        "B": finite_or_nan(last["B"]),
        "B_first_term": finite_or_nan(last["B_first_term"]),
        "vacuous": bool(last["vacuous"]),
        "n": last["n"],
        "n_nonvacuous": nonvac[0] if nonvac else math.nan,
        "gap": last["test_loss"] - last["train_loss"],
        "steps": last["steps"],
        "capped": bool(last["capped"]),
        "loss_ratio": finite_or_nan(last["loss_ratio"]),
        "trained": bool(last.get("trained", True)),
    }
    if "B_random" in last:
        measured["B_random"] = finite_or_nan(last["B_random"])
    series = [
        {k: (finite_or_nan(v) if isinstance(v, float) else v) for k, v in r.items()
         if k in ("n", "test_loss", "train_loss", "B", "vacuous", "B_random")}
        for r in rows
    ]
    # the smallest c with test <= train + c B at every n (declared c = 1)
    factors = [(r["test_loss"] - r["train_loss"]) / r["B"] for r in rows if r.get("trained", True) and r["B"] > 0]
    constants = {"B_factor": finite_or_nan(max(factors)) if factors else math.nan}
    return Outcome(ok=ok, margin=margin if math.isfinite(margin) or math.isnan(margin) else math.inf,
                   measured=measured, series=series, constants=constants)


def _evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    s = _settings(ctx.profile)
    rows = evaluate_grid(cell, recipe, ctx, _n_grid(cell, ctx.profile), steps=int(s["steps"]),
                         train_when_vacuous=bool(s["train_when_vacuous"]))
    return outcome_from_rows(rows)


def _must_hold(cell: dict, profile) -> bool:
    return (
        not cell.get("control", False)
        and cell["L"] == 2
        and cell["regime"] in ("unit", "unnormalized")
        and (cell["f"], cell["positions"]) == ("z", "first")
    )


def _memory_bytes(cell: dict, profile) -> int:
    n = max(_n_grid(cell, profile))
    m, L = int(cell["m"]), int(cell["L"])
    # W_0, W_t, gradient, temporaries (m x m); forward/backward states of the training set and of a test
    # chunk; H_inf (n x n) and its factor; the control's cross-kernel (N_TEST + n) x n
    return 8 * (5 * m * m + 8 * n * (L + 1) * m + (1 << 24) + 4 * n * n + 2 * (N_TEST + n) * n)


CLAIM = register(
    Claim(
        id="GEN-ADD",
        title="Generalization bound for additive targets (trained RNN, clipped loss)",
        operationalizes=(
            "the paper's generalization theorem for additive concepts sum_l f(beta_l^T X_l) without the small-norm "
            "condition, through the Rademacher bound of Arora et al. (ICML 2019), sqrt(2 y^T H^-1 y / n), in a "
            "scale-free form"
        ),
        statement=(
            "The RNN trained as in LAZY (GD on W, centered output, eta = 1/(m lambda_max(H_m(W_0))), to Loss <= 1e-3 "
            "Loss_0 or a step cap) on n standardized additive labels satisfies, with l(u, y) = min(1, |u - y|) on "
            f"{N_TEST} fresh test sequences: test_loss <= train_loss + B, B = 2 sqrt(y^T H_inf^-1 y tr H_inf) / n + "
            f"3 sqrt(log(2/delta)/(2n)), delta = {DELTA}; reports whether B < 1 and the smallest n of the grid where it is"
        ),
        pass_rule=(
            "per example, a nested n grid: fails if test > train + B at some n; holds if the inequality holds at every "
            "n and B < 1 at some n; inconclusive when B >= 1 at every n (vacuous: the check could not fail); "
            "margin = max_n test / (train + B)"
        ),
        negative_control=(
            "B computed on the true labels, then train and test labels replaced by independent N(0, 1) draws and a "
            "predictor interpolating them (the linearized network's T -> infinity limit, see the docstring for why "
            "not the trained RNN) at n = 512 (unit) and 1024 (unnormalized), L = 2: fails"
        ),
        expected=(
            "holds (non-vacuously) at L = 2 in the unit and unnormalized regimes for f = z on the first position; "
            "vacuous (inconclusive) in the normalized regime and for harder targets at CPU sample sizes"
        ),
        axes=("n", "L", "regime"),
        declared={"B_factor": 1.0},
        cells=_cells,
        strategy=_strategy,
        evaluate=_evaluate,
        delta=0.1,
        must_hold=_must_hold,
        memory_bytes=_memory_bytes,
    )
)
