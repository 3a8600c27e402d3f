"""PERT: the near-initialization (perturbation) bounds behind the paper's over-parameterization lemmas.

Math (SPEC section 4, row PERT). At the random initialization W (W_ij ~ N(0, 2/m)), perturbed to
W' = W + Delta with spectral norm ||Delta||_2 = omega, primes marking the quantities of W',
D_l = diag(1[g_l > 0]) and G(x) = grad_W f(x) = sum_l delta_l h_{l-1}^T, for every omega of the grid and
every sequence x:

    r_h         = max_l ||h'_l - h_l|| / ||h_l||                                  <= c_h (omega L)
    flips       = max_l ||D'_l - D_l||_0 / m                                      <= c_D (omega L)^(2/3)
    r_g         = ||G'(x) - G(x)||_F / ||G(x)||_F                                  <= c_g (omega L)^(1/3)
    first_order = |f'(x) - f(x) - <G(x), Delta>| / (||G(x)||_F ||Delta||_F)       <= c_1 (omega L)^(1/3)

with the operational constants c = 4, at the omegas of the profile's grid with omega L < 1
(NEAR_INIT_OMEGA_L): the bounds are the first-order expansion of a perturbation that compounds over the
L steps of the recurrence, (1 + c omega)^L - 1 ~ c omega L, which holds only while omega L is small; the
grid's omegas with omega L >= 1 are recorded as out-of-regime probes (``in_grid`` False in the series,
``outside_margin_<stat>`` in the measured values), like omega = 1. The exponents are the worst case over
directions (sign-pattern counting: a perturbation of relative size eps can flip at most ~eps^(2/3) m
units if it concentrates on them); a random direction flips ~eps m units, so measured slopes in omega
are usually steeper.

Directions (per example): ``random``: R = Z / ||Z||_2 for a Gaussian m x m matrix Z (exact SVD norm
for m <= 256, a Lanczos Ritz value above: a lower bound, so ||Delta||_2 >= omega, never a weaker test
than stated); ``adversarial``: omega u v^T with (u, v) the top singular pair of G(x)
(``rnn_core.perturb.gradient_top_singular``, exact through two thin QRs since rank G <= L - 1).

Computation: every perturbed network of one example (each omega, both directions, each x) runs in one
batched forward and backward pass, ``rnn_core.perturbation_statistics`` (0 / 0 := 0, x / 0 := +inf).
Pass: every statistic <= its bound at every omega of the grid, both directions, every x; margin = the
largest value / bound; measured constant of a statistic = max value / (omega L)^p; slopes: least-squares
log-log slopes in omega (:func:`claims.fits.loglog_slope`) of the worst value, overall and per direction.

Search cells (kind "search", :mod:`claims.search`): the lemma is "for every Delta with ||Delta||_2 = omega",
so one cell per statistic searches Delta = omega P Q^T of rank <= 2L (``project_spectral`` keeps
||P Q^T||_2 = 1) at the largest omega of the rule, for one sequence and network of a drawn recipe; score =
the statistic / its bound by ``perturbation_statistics`` with the dense Delta, gradients through a plain
autograd transcription of the perturbed pass.

Control: perturbations far outside the near-initialization regime at a length where it matters: the
omegas CONTROL_OMEGAS = (1, 2, 4) instead of the grid, at L = CONTROL_L = 16, the paper's init and the
largest width. A perturbation of spectral norm 1-4 (W's is ~2 sqrt 2) changes the recurrence itself:
the perturbed hidden states and deltas grow or decorrelate geometrically in l, so r_g and r_h exceed
bounds that grow only like (omega L)^(1/3) and omega L, while the gradient at W stays non-zero and
every ratio is finite; the recorded reason names the statistics that exceeded their bounds. At short
lengths the bounds at omega L >= 1 exceed 4 while flips <= 1, and omega = 1 passes: the control needs
the long length; the larger omegas make the failure certain rather than likely (at omega = 1 alone,
whether the adversarial rank-one direction destabilizes the recurrence depends on the network).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from claims.base import Claim, Context, Outcome, finite_or_nan
from claims.catalogue import _cost
from claims.catalogue import _init_common as common
from claims.fits import loglog_slope
from claims.registry import register

__all__ = [
    "CLAIM", "SETTINGS", "STATS", "EXPONENTS", "DECLARED", "CONTROL_L", "CONTROL_OMEGAS", "Directions",
    "lanczos_spectral_norm", "random_direction", "make_directions", "perturbation_rows", "bound",
    "summarize", "violation_reason", "search_cells", "search_rank", "project_spectral",
]

STATS: tuple[str, ...] = ("r_h", "flips", "r_g", "first_order")
#: the power p of (omega L) in each bound
EXPONENTS: dict[str, float] = {"r_h": 1.0, "flips": 2.0 / 3.0, "r_g": 1.0 / 3.0, "first_order": 1.0 / 3.0}
#: operational constants (SPEC: "the constants 4 are operational")
DECLARED: dict[str, float] = {s: 4.0 for s in STATS}
DIRECTION_NAMES: tuple[str, ...] = ("random", "adversarial")
#: the pass rule applies at the grid's omegas with omega L below this (the near-initialization regime);
#: the others are recorded as probes
NEAR_INIT_OMEGA_L = 1.0
#: the control: the omegas CONTROL_OMEGAS (instead of the grid) at length CONTROL_L, the largest width
CONTROL_L = 16
CONTROL_OMEGAS: tuple[float, ...] = (1.0, 2.0, 4.0)

#: n sequences per example (each gets its own adversarial direction), the omega grid, and whether the
#: out-of-grid omega = 1 probe is recorded in the series
SETTINGS: dict[str, dict] = {
    "smoke": {"n": 2, "omegas": (1e-3, 1e-1), "probe_one": False,
              "search": {"widths": (64,), "lengths": (2,), "regimes": ("unit",), "stats": ("r_g",)}},
    "quick": {"n": 2, "omegas": (1e-4, 3e-3, 1e-1), "probe_one": False,
              "search": {"widths": (512,), "lengths": (2, 8), "regimes": ("unit",), "stats": STATS}},
    "standard": {"n": 1, "omegas": (1e-4, 1e-3, 1e-2, 1e-1), "probe_one": False,
                 "search": {"widths": (2048,), "lengths": (2, 8, 32), "regimes": ("normalized", "unit", "unnormalized"),
                            "stats": STATS}},
    "full": {"n": 8, "omegas": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1), "probe_one": True,
             "search": {"widths": (8192,), "lengths": (2, 8, 32, 64), "regimes": ("normalized", "unit", "unnormalized"),
                        "stats": STATS}},
}

# ||R||_2: exact SVD up to this width, Lanczos (a lower bound, see lanczos_spectral_norm) above it.
_EXACT_NORM_MAX_M = 256
_LANCZOS_STEPS = 20
# Offset mixed into the init seed for the random direction's stream.
_DIRECTION_SEED_TAG = 0x5045_5254  # "PERT"


@dataclass(frozen=True)
class Directions:
    """The perturbation directions of one example.

    R: (m, m) Gaussian matrix divided by its (Lanczos) spectral norm; R_spec = the spectral-norm estimate
    of the raw Gaussian matrix it was divided by. U, V: (n, m) top left / right singular vectors of
    G(x_i); sigma: (n,) the top singular values.
    """

    R: torch.Tensor
    R_spec: float
    U: torch.Tensor
    V: torch.Tensor
    sigma: torch.Tensor


def lanczos_spectral_norm(Z: torch.Tensor, steps: int, seed: int) -> float:
    """Lanczos estimate of ||Z||_2: the top Ritz value of Z^T Z after ``steps`` steps (full
    reorthogonalization) from a seeded random start. A Ritz value never exceeds the top eigenvalue, so
    the estimate is a LOWER bound on ||Z||_2 (Gaussian matrices have no spectral gap at the edge, so the
    relative error decays slowly in the number of steps; tests/test_claim_pert.py bounds it)."""
    m = Z.shape[1]
    k = max(1, min(int(steps), m))
    gen = torch.Generator().manual_seed(int(seed))
    Q = torch.zeros((k + 1, m), dtype=Z.dtype, device=Z.device)
    q = torch.randn(m, generator=gen, dtype=torch.float64).to(device=Z.device, dtype=Z.dtype)
    Q[0] = q / q.norm()
    alpha: list[float] = []
    beta: list[float] = []
    for j in range(k):
        w = Z.T @ (Z @ Q[j])
        alpha.append(float(w @ Q[j]))
        for _ in range(2):  # full reorthogonalization, twice ("twice is enough")
            w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
        b = float(w.norm())
        if j == k - 1 or b <= 1e-12 * max(abs(alpha[0]), 1e-300):
            break
        beta.append(b)
        Q[j + 1] = w / b
    T = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    if beta:
        off = torch.tensor(beta[: len(alpha) - 1], dtype=torch.float64)
        T = T + torch.diag(off, 1) + torch.diag(off, -1)
    return math.sqrt(max(float(torch.linalg.eigvalsh(T)[-1]), 0.0))


def random_direction(m: int, seed: int, *, device, dtype) -> tuple[torch.Tensor, float]:
    """(R, s): R = Z / s with Z an m x m standard Gaussian matrix (drawn on the CPU from ``seed``) and
    s = ||Z||_2: exact (SVD) for m <= 256, else the Lanczos lower bound of :func:`lanczos_spectral_norm`,
    so that ||R||_2 >= 1 and the perturbation applied is never weaker than stated."""
    gen = torch.Generator().manual_seed(int(seed))
    Z = torch.randn((m, m), generator=gen, dtype=torch.float64).to(device=device)
    if m <= _EXACT_NORM_MAX_M:
        s = float(torch.linalg.matrix_norm(Z, ord=2))
    else:
        s = lanczos_spectral_norm(Z, _LANCZOS_STEPS, seed + 1)
    if not s > 0.0:
        raise ValueError(f"random direction: spectral norm estimate {s} is not positive (m = {m})")
    return (Z / s).to(dtype=dtype), s




def make_directions(p, X: torch.Tensor, seed: int) -> Directions:
    """The random direction (from ``seed``) and the adversarial pairs of G(x_i) for every sequence."""
    from rnn_core.ntk import ntk_features
    from rnn_core.perturb import gradient_top_singular

    U, V, sigma = gradient_top_singular(*ntk_features(p, X), seed)  # from delta_l and h_{l-1}, l = 2..L
    R, s = random_direction(p.m, seed, device=p.device, dtype=p.dtype)
    return Directions(R=R, R_spec=s, U=U, V=V, sigma=sigma)


def perturbation_rows(p, X, omegas, *, seed: int = 0) -> tuple[list[dict], Directions]:
    """The four statistics for every (omega, direction, sequence x_i), from one batched pass.

    Returns (rows, dirs): rows are dicts {"omega", "direction", "i", "r_h", "flips", "r_g",
    "first_order"} (floats; +inf where a ratio has a zero denominator and a nonzero numerator).
    """
    from rnn_core.perturb import perturbation_statistics

    omegas = [float(w) for w in omegas]
    if not omegas or any(not (math.isfinite(w) and w > 0) for w in omegas):
        raise ValueError(f"omegas must be a non-empty list of finite numbers > 0, got {omegas}")
    X = torch.as_tensor(X).to(device=p.device, dtype=p.dtype)
    n = X.shape[0]
    dirs = make_directions(p, X, seed)
    keys = [(w, name, i) for w in omegas for name in DIRECTION_NAMES for i in range(n)]
    index = torch.tensor([i for _, _, i in keys], device=p.device)
    omega = torch.tensor([w for w, _, _ in keys], dtype=p.dtype, device=p.device)
    rank_one = torch.tensor([name == "adversarial" for _, name, _ in keys], device=p.device)
    S = perturbation_statistics(p, X, omega, index=index, R=dirs.R, U=dirs.U[index], V=dirs.V[index],
                                rank_one=rank_one)
    stats = {name: getattr(S, name).tolist() for name in STATS}
    rows = [{"omega": w, "direction": name, "i": i, **{st: float(stats[st][k]) for st in STATS}}
            for k, (w, name, i) in enumerate(keys)]
    return rows, dirs


def bound(stat: str, omega: float, L: int, c: float | None = None) -> float:
    """c (omega L)^p for the statistic (c defaults to the declared constant)."""
    return (DECLARED[stat] if c is None else c) * (omega * L) ** EXPONENTS[stat]


def _worst(rows, stat, omega, direction=None) -> float:
    vals = [r[stat] for r in rows if r["omega"] == omega and (direction is None or r["direction"] == direction)]
    return max(vals) if vals else math.nan


def summarize(rows: list[dict], omegas, L: int) -> dict:
    """Pass/fail, margin, per-statistic margins and measured constants, the worst violating row of each
    statistic, and the log-log slopes in omega, over the rows whose omega is in ``omegas``."""
    grid = [r for r in rows if r["omega"] in set(omegas)]
    ok = True
    margin = 0.0
    constants, margins, worst_rows = {}, {}, {}
    for stat in STATS:
        worst_m, worst_row = 0.0, None
        for r in grid:
            v = r[stat]
            ratio = v / bound(stat, r["omega"], L) if not math.isnan(v) else math.inf
            if not v <= bound(stat, r["omega"], L):  # NaN fails too
                ok = False
            if worst_row is None or ratio > worst_m:
                worst_m, worst_row = ratio, r
        margins[stat] = worst_m
        constants[stat] = worst_m * DECLARED[stat]
        worst_rows[stat] = worst_row
        margin = max(margin, worst_m)
    slopes = {}
    for stat in STATS:
        slopes[stat] = loglog_slope(omegas, [_worst(grid, stat, w) for w in omegas]).slope
        for d in DIRECTION_NAMES:
            slopes[f"{stat}_{d}"] = loglog_slope(omegas, [_worst(grid, stat, w, d) for w in omegas]).slope
    return {"ok": ok, "margin": margin, "constants": constants, "margins": margins, "worst_rows": worst_rows,
            "slopes": slopes}


def violation_reason(summary: dict, L: int) -> str:
    """Which statistics exceeded their bounds, worst first: value, bound, omega, direction, sequence."""
    parts = []
    for stat in sorted(STATS, key=lambda s: -summary["margins"][s]):
        if summary["margins"][stat] <= 1.0:
            continue
        r = summary["worst_rows"][stat]
        parts.append(f"{stat} = {r[stat]:.3g} > {DECLARED[stat]:g} (omega L)^{EXPONENTS[stat]:.3g} = "
                     f"{bound(stat, r['omega'], L):.3g} at omega = {r['omega']:g} ({r['direction']}, x_{r['i']})")
    return "; ".join(parts)


def cells(profile) -> list[dict]:
    out = common.grid_cells(profile)
    for regime in profile.regimes:
        out.append({"m": int(profile.max_width), "L": CONTROL_L, "regime": regime,
                    "omegas": list(CONTROL_OMEGAS), "control": True})
    return out + search_cells(profile)


def search_cells(profile) -> list[dict]:
    """The counterexample-search cells (:mod:`claims.search`), one per statistic: the worst Delta with
    ||Delta||_2 = omega at the largest omega of the pass rule (the grid's largest omega with omega L < 1)."""
    s = CLAIM.settings_for(profile)
    g = s["search"]
    out = []
    for regime in g["regimes"]:
        for L in g["lengths"]:
            omega = max(w for w in s["omegas"] if w * L < NEAR_INIT_OMEGA_L)
            out += [{"kind": "search", "m": int(m), "L": int(L), "regime": regime, "omega": float(omega), "stat": stat}
                    for m in g["widths"] for stat in g["stats"]]
    return out


def strategy(cell: dict, profile):
    return common.recipes_for(cell, CLAIM.settings_for(profile)["n"])


def _direction_seed(init_seed: int) -> int:
    return int(np.random.SeedSequence([int(init_seed), _DIRECTION_SEED_TAG]).generate_state(1)[0])


def _omegas(cell: dict, profile) -> tuple[tuple[float, ...], list[float]]:
    """(the omegas of the pass rule, the probe omegas) of a cell: the grid's omegas with
    omega L < NEAR_INIT_OMEGA_L, then the grid's others and the out-of-grid omega = 1 as probes."""
    if "omegas" in cell:
        return tuple(float(w) for w in cell["omegas"]), []
    s = CLAIM.settings_for(profile)
    L = int(cell["L"])
    grid = [float(w) for w in s["omegas"]]
    rule = tuple(w for w in grid if w * L < NEAR_INIT_OMEGA_L)
    if len(rule) < 2:
        raise ValueError(f"PERT: the omega grid {grid} has {len(rule)} omegas with omega L < "
                         f"{NEAR_INIT_OMEGA_L:g} at L = {L}; the pass rule and the slopes need at least 2")
    probe = [w for w in grid if w not in rule]
    return rule, probe + ([1.0] if s["probe_one"] and 1.0 not in grid else [])


def evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    omegas, probe = _omegas(cell, ctx.profile)
    L = int(cell["L"])
    X = common.inputs(recipe, ctx)
    p = common.network(cell, recipe, ctx)
    rows, dirs = perturbation_rows(p, X, list(omegas) + probe, seed=_direction_seed(recipe.init_seed))
    s = summarize(rows, omegas, L)

    measured: dict = {}
    for stat in STATS:
        measured[f"constant_{stat}"] = finite_or_nan(s["constants"][stat])
        measured[f"margin_{stat}"] = finite_or_nan(s["margins"][stat])
    for key, value in s["slopes"].items():
        measured[f"slope_{key}"] = finite_or_nan(value)
    measured["infinite_values"] = sum(1 for r in rows if r["omega"] in omegas for st in STATS if math.isinf(r[st]))
    measured["grad_norm_min"] = finite_or_nan(float(dirs.sigma.min()))  # ||G||_2 <= ||G||_F: > 0 means G != 0
    measured["spectral_norm_R_raw"] = finite_or_nan(dirs.R_spec)
    outside = [w for w in probe if w != 1.0]
    for stat in STATS:
        if 1.0 in probe:
            measured[f"omega1_{stat}"] = finite_or_nan(_worst(rows, stat, 1.0))
            measured[f"omega1_margin_{stat}"] = finite_or_nan(_worst(rows, stat, 1.0) / bound(stat, 1.0, L))
        if outside:  # the grid's omegas with omega L >= 1: the largest value / bound there
            measured[f"outside_margin_{stat}"] = finite_or_nan(max(_worst(rows, stat, w) / bound(stat, w, L)
                                                                   for w in outside))

    series = [
        {"omega": w, "direction": d, "stat": stat, "value": finite_or_nan(_worst(rows, stat, w, d)),
         "bound": bound(stat, w, L), "in_grid": w in omegas}
        for w in list(omegas) + probe for d in DIRECTION_NAMES for stat in STATS
    ]
    return Outcome(
        ok=bool(s["ok"]),
        margin=finite_or_nan(s["margin"]) if math.isfinite(s["margin"]) else math.inf,
        measured=measured,
        series=series,
        constants=dict(s["constants"]),
        reason="" if s["ok"] else violation_reason(s, L),
    )


def must_hold(cell: dict, profile) -> bool:
    """Asserted at the profile's largest width for every length, not only L = 2: the bounds carry no
    width, and at L = 2 the gradient G = delta_2 h_1^T never involves W in the backward pass, so a wrong
    backward pass is visible only from L = 3 on (r_g and the first-order error then fail at small omega)."""
    return (not common.is_control(cell)) and int(cell["m"]) == profile.max_width


def _rows(cell: dict, profile) -> int:
    omegas, probe = _omegas(cell, profile)
    return CLAIM.settings_for(profile)["n"] * (len(omegas) + len(probe)) * len(DIRECTION_NAMES)


def memory_bytes(cell: dict, profile) -> int:
    m, L, n = int(cell["m"]), int(cell["L"]), CLAIM.settings_for(profile)["n"]
    rows = _rows(cell, profile) + n
    # W, R (and its float64 CPU draw), plus h, g, deltas of every row and a few temporaries
    return 8 * (3 * m * m + 6 * rows * (L + 1) * m)


def cost(cell: dict, profile) -> float:
    m, L = int(cell["m"]), int(cell["L"])
    if cell.get("kind") == "search":  # one sequence, one dense direction per score evaluation
        from claims.search import evaluations

        flops = 8.0 * L * m * m + 2.0 * m * m * search_rank(L, m)
        return evaluations(profile, cell) * _cost.seconds(flops, 2.0 * _cost.network_bytes(m, L, backward=True))
    rows = _rows(cell, profile)
    # the batched pass: forward and backward of every row through W (4 rows L m^2) and, for the dense
    # half, through R again; the spectral norm of R: an SVD up to m = 256 (~10 m^3), 20 Lanczos steps above
    flops = 4.0 * rows * L * m * m + 2.0 * rows * L * m * m
    flops += 10.0 * m ** 3 if m <= _EXACT_NORM_MAX_M else 2.0 * _LANCZOS_STEPS * 2.0 * m * m
    # W once for every row, R again for the dense ones
    return _cost.seconds(flops, 2.0 * _cost.network_bytes(m, L, backward=True), draws=3.0 * m * m)


# ---------------------------------------------------------------------------------------------------
# counterexample search (claims.search): the worst Delta with ||Delta||_2 = omega, for one statistic
# ---------------------------------------------------------------------------------------------------

def search_rank(L: int, m: int) -> int:
    """The rank of the searched perturbations, min(m, 2L): for one sequence the statistics see Delta only
    through Delta h'_{l-1} (L - 1 vectors) and Delta^T delta'_{l+1} (L - 1 vectors), so every Delta acts
    on them like one of rank <= 2L - 2."""
    return min(int(m), 2 * int(L))


def project_spectral(Z: torch.Tensor) -> torch.Tensor:
    """Z = (P, Q) stacked (2, m, k), Delta / omega = P Q^T: onto ||P Q^T||_2 = 1 by thin QRs of P and Q and
    the SVD of the k x k core, singular values clipped to <= 1 and the largest set to 1."""
    P, Q = Z[0].detach().to(torch.float64), Z[1].detach().to(torch.float64)
    Qp, Rp = torch.linalg.qr(P)
    Qq, Rq = torch.linalg.qr(Q)
    Uc, S, Vh = torch.linalg.svd(Rp @ Rq.T)
    S = S.clamp(max=1.0)
    S[0] = 1.0
    root = S.sqrt()
    return torch.stack([Qp @ (Uc * root), Qq @ (Vh.T * root)])


def _gradient_factors(p, X: torch.Tensor):
    """(M, N) with G(x) = grad_W f(x) = M N^T = sum_{l>=2} delta_l h_{l-1}^T, one sequence, plain autograd-free
    transcription of SPEC section 1 (exact masks)."""
    from claims.catalogue._search_stability import forward_autograd

    hs, gs = forward_autograd(p, X)
    delta = (gs[-1] > 0).to(X.dtype) * p.B
    deltas = [delta]
    for g in reversed(gs[:-1]):
        delta = (g > 0).to(X.dtype) * (delta @ p.W)
        deltas.append(delta)
    deltas = deltas[::-1]  # delta_1..delta_L, each (1, m)
    M = torch.cat(deltas[1:], dim=0).T  # (m, L-1)
    N = torch.cat(hs[:-1], dim=0).T
    return M, N, hs, gs, deltas


def _perturbed_objective(p, X, Z, omega: float, stat: str, L: int) -> torch.Tensor:
    """log(stat / bound) of the perturbed network W + omega P Q^T, differentiable in Z = (P, Q): hard masks
    for the backward pass (piecewise constant), a sigmoid surrogate for the flips count."""
    from claims.catalogue._search_stability import forward_autograd

    P, Q = Z[0], Z[1]
    with torch.no_grad():
        M, N, hs, gs, deltas = _gradient_factors(p, X)
    Wp = p.W + omega * (P @ Q.T)
    pp = p.with_W(Wp)
    hs2, gs2 = forward_autograd(pp, X)
    b = bound(stat, omega, L)
    if stat == "r_h":
        val = torch.stack([(h2 - h).norm() / h.norm().clamp_min(1e-300) for h, h2 in zip(hs, hs2)]).max()
    elif stat == "flips":
        val = torch.stack([torch.sigmoid(-g2 * torch.sign(g) / (0.1 * g.std().clamp_min(1e-300))).mean()
                           for g, g2 in zip(gs, gs2)]).max()
    elif stat == "r_g":
        delta = (gs2[-1] > 0).to(X.dtype) * p.B
        d2 = [delta]
        for g in reversed(gs2[:-1]):
            delta = (g > 0).to(X.dtype) * (delta @ Wp)
            d2.append(delta)
        d2 = d2[::-1]
        Mc = torch.cat([torch.cat(d2[1:], dim=0), -M.T], dim=0)
        Nc = torch.cat([torch.cat(hs2[:-1], dim=0), N.T], dim=0)
        change = ((Mc @ Mc.T) * (Nc @ Nc.T)).sum().clamp_min(1e-300).sqrt()
        val = change / ((M.T @ M) * (N.T @ N)).sum().sqrt()
    elif stat == "first_order":
        f, f2 = hs[-1] @ p.B, hs2[-1] @ p.B
        linear = omega * ((M.T @ P) * (N.T @ Q)).sum()
        fro = omega * ((P.T @ P) * (Q.T @ Q)).sum().clamp_min(1e-300).sqrt()
        val = (f2 - f - linear).abs().sum() / (((M.T @ M) * (N.T @ N)).sum().sqrt() * fro)
    else:
        raise ValueError(f"stat must be one of {STATS}, got {stat!r}")
    return torch.log(val.clamp_min(1e-300) / b)


def search(cell: dict, ctx: Context):
    """PERT's search problem on one search cell: the input x and the network are a drawn recipe's (n = 1),
    the point is Delta / omega = P Q^T of rank search_rank(L, m) with ||P Q^T||_2 = 1 (``project_spectral``);
    score = the cell's statistic / its bound c (omega L)^p (the claim's own ``perturbation_statistics``
    with the dense Delta); constant = 4 score. Start points: the top singular pair of G(x) (the claim's
    adversarial direction) plus a seeded Gaussian rest."""
    from claims.search import SearchProblem
    from rnn_core.data import Recipe
    from rnn_core.perturb import perturbation_statistics

    m, L, stat, omega = int(cell["m"]), int(cell["L"]), cell["stat"], float(cell["omega"])
    if stat not in STATS:
        raise ValueError(f"cell stat must be one of {', '.join(STATS)}, got {stat!r}")
    k = search_rank(L, m)
    memo: dict[str, tuple] = {}

    def setup(base):
        key = repr(sorted(base.items()))
        if key not in memo:
            memo.clear()
            recipe = Recipe.from_dict(base)
            memo[key] = (common.network(cell, recipe, ctx), common.inputs(recipe, ctx))
        return memo[key]

    def start(recipe):
        base = recipe.to_dict()
        p, X = setup(base)
        M, N, *_ = _gradient_factors(p, X)
        gen = torch.Generator().manual_seed(_direction_seed(recipe.init_seed))
        Z = 0.3 * torch.randn((2, m, k), generator=gen, dtype=torch.float64).to(ctx.device) / math.sqrt(m)
        Qm, Rm = torch.linalg.qr(M)
        Qn, Rn = torch.linalg.qr(N)
        U, _, Vh = torch.linalg.svd(Rm @ Rn.T)
        Z[0, :, 0], Z[1, :, 0] = Qm @ U[:, 0], Qn @ Vh[0]
        return Z, base

    def score(Z, base):
        p, X = setup(base)
        R = Z[0] @ Z[1].T
        S = perturbation_statistics(p, X, torch.tensor([omega], dtype=torch.float64), R=R)
        return float(getattr(S, stat)[0]) / bound(stat, omega, L)

    def feasible(Z, base):
        if tuple(Z.shape) != (2, m, k):
            return f"the point has shape {tuple(Z.shape)}, not (2, {m}, {k})"
        norm = float(torch.linalg.matrix_norm(Z[0] @ Z[1].T, ord=2))
        return "" if abs(norm - 1.0) <= 1e-9 else f"||Delta||_2 / omega = {norm:.12g}, not 1"

    def objective(Z, base):
        p, X = setup(base)
        return _perturbed_objective(p, X, Z, omega, stat, L)

    return SearchProblem(
        strategy=common.recipes_for(cell, 1),
        start=start,
        score=score,
        objective=objective,
        project=lambda Z, base: project_spectral(Z),
        feasible=feasible,
        constant=lambda s: DECLARED[stat] * s,
        declared=DECLARED[stat],
        constant_name=stat,
    )


def figure(claim: str, records: list[dict], profile: str) -> Any:
    """The report figure: each perturbation quantity against omega, with its bound and reference slope."""
    from fractions import Fraction

    import numpy as np
    from reports import figures as kit  # matplotlib: imported when the report draws

    rows = [r for r in kit.series_rows(records, ("omega", "stat", "value")) if math.isfinite(kit.num(r["value"]))]
    if not rows:
        raise kit.Missing("no series rows with omega, stat, value")
    titles = {"r_h": "r_h = max_l ‖h'−h‖/‖h‖", "flips": "sign flips / m", "r_g": "r_g = ‖∇f'−∇f‖/‖∇f‖",
              "first_order": "first-order error"}
    present = {r["stat"] for r in rows}
    stats = [(s, EXPONENTS[s], titles.get(s, s)) for s in STATS if s in present]
    stats += [(s, None, s) for s in sorted(present - set(STATS))]
    fig, axes = kit.new_axes(ncols=len(stats), w=3.6, h=3.4)
    Ls = sorted({r.get("L") for r in rows if r.get("L") is not None}, key=kit.sort_key) or [None]
    dirs = sorted({str(r.get("direction", "")) for r in rows})
    for ax, (stat, slope, label) in zip(axes, stats):
        rs = [r for r in rows if r["stat"] == stat]
        for (L, d), grp in kit.group_rows(rs, lambda r: (r.get("L"), str(r.get("direction", "")))):
            agg = defaultdict(list)
            for r in grp:
                agg[float(r["omega"])].append(float(r["value"]))
            om = sorted(agg)
            i = Ls.index(L) if L in Ls else 0
            st = kit.style(i)
            st["marker"] = kit.MARKERS[dirs.index(d) % len(kit.MARKERS)]
            ax.plot(om, [max(agg[o]) for o in om], ls="none" if len(om) < 2 else "-", alpha=0.85,
                    label=f"L={L}, {d}" if L is not None else d, **st)
        bnd = defaultdict(list)
        for r in rs:
            if math.isfinite(kit.num(r.get("bound"))):
                bnd[float(r["omega"])].append(float(r["bound"]))
        if bnd:
            om = sorted(bnd)
            ax.plot(om, [max(bnd[o]) for o in om], color="#000000", ls="--", lw=1, label="declared bound")
        pos = [float(r["value"]) for r in rs if float(r["value"]) > 0]
        omegas = sorted({float(r["omega"]) for r in rs if float(r["omega"]) > 0})
        if slope is not None and pos and len(omegas) >= 2:
            g = np.array([omegas[0], omegas[-1]])
            y0 = float(np.median(pos))
            ax.plot(g, y0 * (g / math.sqrt(g[0] * g[1])) ** slope, color="#777777", ls=":",
                    label=f"slope {Fraction(slope).limit_denominator(12)}")
        ax.set_xscale("log")
        if pos:
            ax.set_yscale("log")
        ax.set_xlabel("perturbation ω = ‖Δ‖₂")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("measured value")
    constants = ", ".join(f"{DECLARED[s]:g}" for s in STATS)
    powers = ", ".join(str(Fraction(EXPONENTS[s]).limit_denominator(12)) for s in STATS)
    return kit.Figure("pert", "Perturbation quantities against ω", kit.to_svg(fig),
                      "Near-initialization quantities against the spectral norm ω of the perturbation (log-log), "
                      "colour = length L, marker = direction (random / adversarial), worst over examples; dashed: "
                      f"the declared bound C (ωL)^p (C = {constants}), judged only where ωL < {NEAR_INIT_OMEGA_L:g} "
                      f"(larger ω are recorded as probes); dotted: the reference slopes p = {powers}. Profile: {profile}.")


CLAIM = register(
    Claim.from_module(
        __name__,
        id="PERT",
        title="Near-initialization bounds: hidden states, sign patterns, gradients, first-order error",
        operationalizes=(
            "the perturbation lemmas near random initialization (forward/backward stability for "
            "||W' - W||_2 <= omega and the semi-smoothness of f) used by the paper's optimization analysis"
        ),
        statement=(
            "For W' = W + Delta, ||Delta||_2 = omega on a log grid in [1e-4, 1e-1], random (Gaussian, unit "
            "spectral norm) and adversarial (omega u v^T, top singular pair of grad_W f(x)) directions: "
            "r_h = max_l ||h'_l - h_l|| / ||h_l|| <= 4 omega L; max_l ||D'_l - D_l||_0 / m <= 4 (omega L)^(2/3); "
            "||grad f(W') - grad f(W)||_F / ||grad f(W)||_F <= 4 (omega L)^(1/3); "
            "|f(W') - f(W) - <grad f(W), Delta>| / (||grad f(W)||_F ||Delta||_F) <= 4 (omega L)^(1/3). "
            "Constants 4 are operational; measured constants and log-log slopes in omega are reported. "
            "The bounds are first-order in omega L (a perturbation compounds like (1 + c omega)^L over the "
            "recurrence), so they are checked at the grid's omegas with omega L < 1; the grid's larger omegas "
            "and omega = 1 are recorded as out-of-regime probes."
        ),
        pass_rule=(
            "an example passes when all four statistics are <= their bounds at every omega of the profile's "
            "grid with omega L < 1, for both directions and every sequence of the recipe; margin = max value / "
            "bound; a failing example's reason names each statistic that exceeded its bound"
        ),
        negative_control=(
            "omega in {1, 2, 4} instead of the grid (perturbations far outside the near-initialization regime) "
            "at L = 16 and the largest width, paper's init: the hidden states and the gradient move by more "
            "than the bounds allow (r_g, r_h exceed them) while grad f(W) stays non-zero and every ratio is "
            "finite; at L <= 8 omega = 1 stays within the bounds, so the control uses the long length"
        ),
        expected="holds at the largest width for every length and regime (asserted); findings at smaller widths",
        axes=("m", "L", "regime", "omega"),
        declared=dict(DECLARED),
        delta=0.1,
    )
)
