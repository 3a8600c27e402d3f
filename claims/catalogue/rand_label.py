"""RAND-LABEL: the kernel complexity separates a learnable concept from random labels.

The data-dependent complexity behind the generalization bound (Arora, Du, Hu, Li, Wang, ICML 2019),

    C(y) = y^T H_inf^-1 y * tr(H_inf) / n^2,

is scale-free (rnn_core.linalg's jitter is relative to tr H / n, so H -> c H leaves it unchanged). Labels
are standardized on the n training points (mean 0, population variance 1), the same map for the concept
and for the random labels, so C compares directions, not label scales. y^T H^-1 y is
rnn_core.linalg.quadratic_form (one Cholesky factor; for k columns it returns the sum over columns).

One example (one recipe) in a cell (target, L, regime, n_max):
1. one training draw of n_max sequences (separation floor 1e-3, so that H_inf is positive definite far
   above the jitter; nested subsets give every n of the grid n_min, 2 n_min, ..., n_max) and one
   independent test draw;
2. n_eps of the concept (CPLX-ADD's definition: the first grid n whose H_inf kernel-regression test MSE
   is <= 0.25 Var(y)), from the growing prefix kernels of ``_sample_complexity``;
3. at every grid n: C(concept), C(random) = the mean of C over ``random_draws`` standardized N(0, 1)
   label vectors (a single one is a heavy-tailed weighted chi-square dominated by the smallest
   eigenvalues; the mean estimates E C(random) ~ tr(H^-1) tr(H) / n^2), and ratio = C(concept) / C(random);
4. the example passes when ratio <= 0.5 at every n >= 2 n_eps ("applicable", up to the cell's n_max);
   with no applicable n (the concept is not learnable below n_max / 2) it is inconclusive (ok None), never
   a pass. margin = max applicable ratio / 0.5.
Series rows (every n of the grid): {"n", "L", "C_concept", "C_random", "ratio", "applicable"}, and
"mse_ratio" up to n_eps.

Targets (cell parameter ``target``): ``additive``: y = sum_{l=1}^{L} beta_l^T X_l (f = z on every step);
``nvar``: y = (beta^T [X_{L-1}; X_L])^2 (N = 2, span 1, lag 0, f = z^2: cross terms, not additive).

Control: the concept's labels permuted at random (the concept's marginal, no dependence on x) take the
concept's place in C at the same applicable n (n_eps is that of the true concept): ratio ~ 1.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from claims.base import Claim, Context, Outcome, finite_or_nan
from claims.catalogue import _cost
from claims.catalogue._sample_complexity import (
    DEFAULT_THRESHOLD,
    PrefixKernels,
    draw_inputs,
    geometric_grid,
    independent_data,
    test_mse_ratios,
)
from claims.registry import register
from rnn_core.linalg import quadratic_form
from rnn_core.targets import Standardizer, TargetSpec, make_target

__all__ = [
    "CLAIM", "SETTINGS", "RATIO_BOUND", "complexity", "complexities", "target_spec", "rule_on_curve",
    "evaluate_rows",
]

#: C(concept) <= RATIO_BOUND * C(random) where the concept is learnable
RATIO_BOUND = 0.5
#: applicable where n >= LEARNABLE_FACTOR * n_eps
LEARNABLE_FACTOR = 2
#: separation floor of the training draw: H_inf positive definite far above the relative jitter 1e-12
SEPARATION_FLOOR = 1e-3
_RANDOM_TAG = 0x5A11D  # stream tag of the random labels and the control's permutation
TARGETS = ("additive", "nvar")

# Per profile: the cells {(target, L, regime): n_max}. A cell's grid is n_min, 2 n_min, ..., n_max, with
# n_max at least 4 times the largest n_eps measured for it (d = 2), so that the rule has applicable n in
# almost every example. (target, L, regime) combinations whose concept is not learnable below the
# profile's largest n / 2 are not cells: the statement has no applicable n there (the claim's
# ``expected`` and docs/SPEC_NOTES.md list them). Controls: additive at the shortest length.
_SMOKE_CELLS = {
    ("additive", 2, "normalized"): 128, ("additive", 4, "normalized"): 128,
    ("additive", 2, "unit"): 128, ("additive", 4, "unit"): 256,
    ("additive", 2, "unnormalized"): 512, ("additive", 4, "unnormalized"): 256,
    ("nvar", 2, "normalized"): 128, ("nvar", 4, "normalized"): 512,
    ("nvar", 2, "unit"): 256,
}
_QUICK_CELLS = {
    **_SMOKE_CELLS,
    ("nvar", 4, "unit"): 1024,
    ("additive", 8, "normalized"): 256, ("additive", 16, "normalized"): 512,
    ("additive", 8, "unit"): 256, ("additive", 16, "unit"): 1024,
    ("additive", 8, "unnormalized"): 512, ("additive", 16, "unnormalized"): 1024,
}
SETTINGS: dict[str, dict] = {
    "smoke": {"n_min": 16, "n_test": 300, "d": 2, "random_draws": 8, "cells": _SMOKE_CELLS},
    "quick": {"n_min": 16, "n_test": 300, "d": 2, "random_draws": 8, "cells": _QUICK_CELLS},
    "standard": {"n_min": 16, "n_test": 1000, "d": 2, "random_draws": 8,
                 "cells": {**_QUICK_CELLS, ("nvar", 8, "normalized"): 4096, ("nvar", 8, "unit"): 4096,
                           ("additive", 32, "normalized"): 4096}},
    "full": {"n_min": 16, "n_test": 2000, "d": 2, "random_draws": 8,
             "cells": {**_QUICK_CELLS, ("nvar", 8, "normalized"): 8192, ("nvar", 8, "unit"): 8192,
                       ("additive", 32, "normalized"): 8192, ("additive", 32, "unit"): 16384}},
}


def target_spec(kind: str, L: int, seed: int) -> TargetSpec:
    """The concept of a cell: ``additive`` (f = z on every position) or ``nvar`` (N = 2, z^2, last two)."""
    if kind == "additive":
        return TargetSpec(family="additive", f="z", positions=tuple(range(1, L + 1)), seed=seed)
    if kind == "nvar":
        if L < 2:
            raise ValueError(f"the nvar target needs L >= 2, got L = {L}")
        return TargetSpec(family="nvar", f="z2", N=2, span=1, lag=0, seed=seed)
    raise ValueError(f"target must be one of {TARGETS}, got {kind!r}")


def complexity(H, y, *, rel_jitter: float = 1e-12) -> float:
    """C(y) = y^T H^-1 y tr(H) / n^2 for one label vector (rnn_core.linalg.quadratic_form)."""
    from rnn_core.linalg import as_f64

    Ht = as_f64(H)
    n = Ht.shape[0]
    tr = float(torch.diagonal(Ht).sum())
    if not tr > 0.0:
        raise ValueError(f"H must have a positive trace, got tr(H) = {tr}")
    return quadratic_form(Ht, y, rel_jitter=rel_jitter) * tr / (n * n)


def complexities(H: torch.Tensor, Y: torch.Tensor, *, rel_jitter: float = 1e-12) -> torch.Tensor:
    """C(y) for every column y of Y (n, k), float64 (one quadratic form per column)."""
    Y2 = Y if Y.ndim == 2 else Y[:, None]
    return torch.tensor([complexity(H, Y2[:, j], rel_jitter=rel_jitter) for j in range(Y2.shape[1])],
                        dtype=torch.float64)


def _standardize_columns(Y: torch.Tensor) -> torch.Tensor:
    """Each column mapped by rnn_core.targets.Standardizer fitted on that column."""
    return torch.stack([Standardizer.fit(Y[:, j])(Y[:, j]) for j in range(Y.shape[1])], dim=1)


def rule_on_curve(rows: list[dict], n_eps: int | None) -> tuple[bool | None, float]:
    """(ok, margin) of the rule on a curve of rows {"n", "ratio"}: checked where n >= 2 n_eps.

    ok None (inconclusive) when n_eps is None or no row is applicable; margin = max ratio / 0.5 over the
    applicable rows (NaN when none).
    """
    if n_eps is None:
        return None, math.nan
    app = [r for r in rows if r["n"] >= LEARNABLE_FACTOR * n_eps]
    if not app:
        return None, math.nan
    worst = max(float(r["ratio"]) for r in app)
    if not math.isfinite(worst):
        return False, math.inf
    return bool(worst <= RATIO_BOUND), worst / RATIO_BOUND


def cells(profile) -> list[dict]:
    s = CLAIM.settings_for(profile)
    out = [{"L": L, "regime": regime, "target": kind, "n_max": n_max}
           for (kind, L, regime), n_max in sorted(s["cells"].items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1]))
           if regime in profile.regimes]
    for regime in profile.regimes:
        key = ("additive", 2, regime)
        if key in s["cells"]:
            out.append({"L": 2, "regime": regime, "target": "additive", "n_max": s["cells"][key], "control": True})
    return out


def must_hold(cell: dict, profile) -> bool:
    return True  # every cell is one where the concept is learnable on its grid (see SETTINGS)


def strategy(cell: dict, profile):
    from claims.strategies import SEEDS, recipes

    s = CLAIM.settings_for(profile)
    L, kind = int(cell["L"]), cell["target"]
    # The floor is set after drawing: with continuous directions it is always feasible (make_inputs redraws
    # the rare offending sequence), and the strategy's own feasibility check would build every drawn
    # recipe's inputs once more (the runner draws the whole budget of recipes up front).
    return recipes(
        n=int(cell["n_max"]), L=L, d=int(s["d"]), regime=cell["regime"],
        directions=st.sampled_from(("sphere", "gaussian")),  # tokens repeat sequences: H singular
        separation_floor=0.0,
        target=SEEDS.map(lambda seed: target_spec(kind, L, seed)),
        init_seed=0,
    ).map(lambda r: independent_data(r).replace(separation_floor=SEPARATION_FLOOR))


def evaluate_rows(cell: dict, recipe, profile, device=None) -> tuple[int | None, list[dict]]:
    """(n_eps, rows) of one example: the n sweep with the test MSE up to n_eps and C at every n."""
    s = CLAIM.settings_for(profile)
    grid = geometric_grid(int(s["n_min"]), int(cell["n_max"]), 2.0)
    L = int(recipe.L)
    control = bool(cell.get("control", False))
    X, Xte = draw_inputs(recipe, L, grid[-1], int(s["n_test"]), device)
    target = make_target(recipe.target, L, recipe.d)
    y, yte = target(X), target(Xte)
    pk = PrefixKernels(X, Xte, [L])
    k = int(s["random_draws"])
    rng = np.random.default_rng([int(recipe.data_seed), int(recipe.target.seed), _RANDOM_TAG])
    R_full = torch.from_numpy(rng.standard_normal((grid[-1], k))).to(X.device)
    n_eps, rows = None, []
    for n in grid:
        pk.extend(n, test=n_eps is None)  # the test kernel is needed only until n_eps is found
        row = {"n": n, "L": L}
        if n_eps is None:
            row["mse_ratio"] = test_mse_ratios(pk, L, n, [(y, yte)])[0]
            if row["mse_ratio"] <= DEFAULT_THRESHOLD:
                n_eps = n
        H = pk.train(L, n)
        concept = y[:n]
        if control:
            concept = concept[torch.from_numpy(rng.permutation(n)).to(X.device)]
        Y = _standardize_columns(torch.cat([concept[:, None], R_full[:n]], dim=1))
        c_con = complexity(H, Y[:, 0])
        c_rand = complexity(H, Y[:, 1:]) / k  # quadratic_form sums over the k columns
        ratio = c_con / c_rand if c_rand > 0 else math.inf
        row.update(C_concept=c_con, C_random=c_rand, ratio=finite_or_nan(ratio),
                   applicable=n_eps is not None and n >= LEARNABLE_FACTOR * n_eps)
        rows.append(row)
    return n_eps, rows


def evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    n_eps, rows = evaluate_rows(cell, recipe, ctx.profile, ctx.device)
    app = [r for r in rows if r["applicable"]]
    ok, margin = rule_on_curve(app, n_eps)
    measured = {
        "n_eps": n_eps if n_eps is not None else math.nan,
        "applicable_points": len(app),
        "ratio": finite_or_nan(max(r["ratio"] for r in app)) if app else math.nan,
        "ratio_at_largest_n": app[-1]["ratio"] if app else math.nan,
    }
    if ok is None:
        reason = ("n_eps not reached by n_max" if n_eps is None
                  else f"no grid n >= 2 n_eps = {2 * n_eps} up to n_max = {cell['n_max']}")
    elif not ok:
        reason = f"C(concept)/C(random) = {measured['ratio']:.3g} > {RATIO_BOUND} at an applicable n"
    else:
        reason = ""
    constants = {"ratio_bound": measured["ratio"]} if app else {}
    return Outcome(ok=ok, margin=margin, measured=measured, series=rows, constants=constants, reason=reason)


def memory_bytes(cell: dict, profile) -> int:
    s = CLAIM.settings_for(profile)
    n, nt = int(cell["n_max"]), int(s["n_test"])
    # the train kernel at n_max and its grown copy, the test kernel, two solve copies, inputs
    return 8 * (4 * n * n + nt * n + 2 * (n + nt) * int(cell["L"]) * int(s["d"]))


def cost(cell: dict, profile) -> float:
    """Seconds of one example on one core: the kernel recursion of the train kernel grown to n_max
    (~n_max^2 / 2 entries) and of the test kernel up to n_eps (~n_test n_max / 4), and the quadratic
    forms' Cholesky factors at the applicable n (two per n, n^3 / 3 flops each; the largest n dominates,
    1.2x for the smaller ones)."""
    s = CLAIM.settings_for(profile)
    n, L = int(cell["n_max"]), int(cell["L"])
    kernel = _cost.seconds(bytes_moved=_cost.kernel_bytes(n * n / 2 + int(s["n_test"]) * n / 4, L))
    return kernel + _cost.seconds(1.2 * 2 * (n**3 / 3), examples=0)


def figure(claim: str, records: list[dict], profile: str) -> Any:
    """The report figure: the complexity ratio against n per L."""
    import numpy as np
    from reports import figures as kit  # matplotlib: imported when the report draws

    rows = [r for r in kit.series_rows(records, ("n", "ratio")) if math.isfinite(kit.num(r["ratio"]))]
    if not rows:
        raise kit.Missing("no series rows with n and ratio")
    fig, (ax,) = kit.new_axes(w=6.0, h=4.0)
    Ls = sorted({r.get("L") for r in rows}, key=lambda x: kit.sort_key(x) if x is not None else (0, 0))
    for i, L in enumerate(Ls):
        agg = defaultdict(list)
        for r in rows:
            if r.get("L") == L:
                agg[float(r["n"])].append(float(r["ratio"]))
        ns = sorted(agg)
        ax.plot(ns, [float(np.median(agg[n])) for n in ns], label=f"L={L}", **kit.style(i))
    ax.axhline(RATIO_BOUND, color="#000000", ls="--", lw=1, label=f"pass bound {RATIO_BOUND:g}")
    ax.axhline(1.0, color="#777777", ls=":", lw=1, label="ratio 1 (no separation)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("samples n")
    ax.set_ylabel("C(concept) / C(random labels)")
    ax.legend(fontsize=7)
    return kit.Figure("rand_label", "Complexity ratio against n", kit.to_svg(fig),
                      "Ratio of the data-dependent complexity y^T H_inf^-1 y tr H_inf / n^2 of the concept to that of "
                      f"random labels against n, median over examples, one line per L. Profile: {profile}.")


CLAIM = register(
    Claim.from_module(
        __name__,
        id="RAND-LABEL",
        title="The kernel complexity separates learnable concepts from random labels",
        operationalizes=(
            "the data-dependent complexity y^T H^-1 y behind the generalization bound: small for a learnable "
            "concept, large for random labels (Arora et al., ICML 2019, true-versus-random contrast)"
        ),
        statement=(
            "C(y) = y^T H_inf^-1 y tr(H_inf) / n^2 with standardized labels: C(concept) <= 0.5 C(random) at every "
            "n >= 2 n_eps(L) of a geometric grid (n_eps as in CPLX-ADD), for an additive concept "
            "(sum_l beta_l^T X_l) and an N = 2 variable one ((beta^T [X_{L-1}; X_L])^2); C(random) is the mean "
            "over 8 standardized N(0, 1) label vectors"
        ),
        pass_rule=(
            "an example passes when ratio = C(concept) / C(random) <= 0.5 at every applicable n (n >= 2 n_eps, "
            "up to the cell's n_max); no applicable n (concept not learnable below n_max / 2): inconclusive; "
            "margin = max applicable ratio / 0.5"
        ),
        negative_control=(
            "the concept labels permuted at random (same values, no dependence on x) in place of the concept at "
            "the same applicable n: ratio near 1, fails"
        ),
        expected=(
            "holds in every cell (asserted): each cell is a (target, L, regime) whose concept is learnable on the "
            "cell's grid (n_max >= 4 n_eps measured). Not cells, because the concept is not learnable within the "
            "profile's n: the N-variable target in the unnormalized regime (n_eps > 1024 at L = 2), and at L >= 8 "
            "(n_eps > 1024); the additive target at L = 16 in the unit and unnormalized regimes in smoke"
        ),
        axes=("L", "regime", "target", "n_max"),
        declared={"ratio_bound": RATIO_BOUND, "learnable_factor": float(LEARNABLE_FACTOR)},
        delta=0.1,
    )
)
