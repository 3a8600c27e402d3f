"""Sample complexity n_eps of kernel regression with H_inf, and the power-law versus exponential rule.

Shared by CPLX-ADD, CPLX-NVAR and RAND-LABEL (SPEC section 4).

n_eps. For a target y and a geometric grid of training-set sizes n_1 < n_2 < ... (ratio <= 2),

    n_eps = min { n_k : MSE_test(f_n) <= eps * Var_test(y) },   eps = 0.25,

where f_n(x) = H_inf(x, X_n) (H_inf(X_n, X_n) + j I)^-1 y_n is the (ridge-less, jitter j =
rel_jitter * tr H / n) kernel-regression predictor on the first n training sequences (nested subsets of
one draw of n_max sequences), labels standardized on those n training labels (SPEC section 3: the same
affine map applies to the test labels), MSE_test and Var_test taken over an independent test draw
(population variance). n_eps = None ("not reached") when no grid point meets the threshold. It is the
*first* grid point that meets it; the test error of ridge-less regression need not be monotone in n.

Lengths. One pass of the forward accumulation of H_inf (rnn_core.kernels) over l = 1..L_max gives the
kernel of every prefix length at once: the accumulator A_l = Kdot_l (A_{l-1} + K_{l-1} / 2) after step
l IS H_inf of the length-l prefixes. So an L grid is measured on prefixes X[:, :L] of one draw at L_max
(the steps are i.i.d. in every regime, so a prefix is a draw of length L; the lengths share their random
numbers, which makes the n_eps(L) curve smoother, not biased). Each L stops as soon as its n_eps is
found, and all targets of one L share a kernel and a Cholesky factor (multi-column solve).

Memory. The kernel is computed in row blocks of about ``block_entries`` entries (cache-sized on CPU),
the training block only on and above the diagonal (mirrored); a group of lengths is held at once only
while (n + n_test) n 8 bytes per length stays under ``memory_budget``; the solve (float64 Cholesky with
rnn_core.linalg's jitter convention, see _kernel_regression_owned) factors the kernel it owns and makes
one n x n factor. So n = 16384 with 2000 test points needs about 2.4 GiB per length in flight plus 2 GiB
for the factor.

Fit (the pass rule of CPLX-ADD). Over the lengths with a finite n_eps, least squares in log n_eps:

    power law:    log n_eps = a log L + b          (rss_power)
    exponential:  log n_eps = a' L + b'            (rss_exp)

The rule holds when at least ``min_points`` = 4 lengths are finite, rss_power <= rss_exp (ties, e.g. a
constant n_eps, go to the power law: a constant is a polynomial) and a <= exponent_bound. Fewer finite
points: inconclusive (None), never a pass. Two refinements of the SPEC's rule, both documented where
they live: the fits use the interpolated crossing n_cross (NEps.n_cross) rather than the grid value, and
a curve that varies by at most one grid step (FLAT_GROWTH) counts as polynomial (degree 0). The rule can fail: log n_eps linear in L gives rss_exp = 0 <
rss_power (tests/test_sample_complexity.py checks both directions on synthetic curves).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from rnn_core._checks import as_sequences
from rnn_core.kernels import infinite_ntk_prefixes
from rnn_core.data import Recipe, make_dataset, make_inputs, test_seed
from rnn_core.linalg import kernel_regression
from rnn_core.targets import Standardizer, TargetSpec, make_target

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_POINTS",
    "NEps",
    "ComplexityFit",
    "geometric_grid",
    "kernel_memory_bytes",
    "prefix_ntks",
    "n_eps_table",
    "n_eps",
    "n_eps_curve",
    "fit_power_vs_exp",
    "complexity_rule",
    "doubling_ratios",
]

DEFAULT_THRESHOLD = 0.25  # test MSE <= 0.25 Var(y): the SPEC's eps
MIN_POINTS = 4  # finite lengths needed before the power-law / exponential comparison means anything
# A curve whose n_eps varies by at most one grid step (factor 2) over the lengths shows no resolvable
# growth: it is bounded by a constant (a polynomial of degree 0) on the grid, and comparing two fits of
# pure noise would decide the rule by chance (measured: unnormalized, f = z on the last step, n_eps 64-128
# flat over L = 2..8, flipped between "holds" and "fails" across seeds).
FLAT_GROWTH = 2.0
_DEFAULT_MEMORY_BUDGET = 4 << 30  # bytes of kernels in flight for one group of lengths


# ---------------------------------------------------------------------------------------------------
# grids
# ---------------------------------------------------------------------------------------------------


def kernel_memory_bytes(n: int, n_test: int) -> int:
    """Peak bytes of an n-sweep up to n training and n_test test sequences: one length's kernels in flight
    ((n + n_test) n), a second length's, and the solve's n x n copy, float64."""
    return int(8 * (2 * (n + n_test) * n + n * n))


def geometric_grid(n_min: int, n_max: int, factor: float = 2.0) -> tuple[int, ...]:
    """n_min, n_min f, n_min f^2, ... (rounded, distinct) up to n_max; n_max is the last point.

    factor must lie in (1, 2] (the SPEC asks for a grid of ratio at most 2). When n_max is not on the
    progression it is appended, so consecutive ratios never exceed ``factor``.
    """
    if isinstance(n_min, bool) or not isinstance(n_min, numbers.Integral) or n_min < 1:
        raise ValueError(f"n_min must be an integer >= 1, got {n_min!r}")
    if isinstance(n_max, bool) or not isinstance(n_max, numbers.Integral) or n_max < n_min:
        raise ValueError(f"n_max must be an integer >= n_min = {n_min}, got {n_max!r}")
    if not (isinstance(factor, numbers.Real) and 1.0 < factor <= 2.0):
        raise ValueError(f"factor must lie in (1, 2], got {factor!r}")
    out: list[int] = []
    k = 0
    while True:
        v = int(round(n_min * factor**k))
        if v >= n_max:
            break
        if not out or v > out[-1]:
            out.append(v)
        k += 1
    out.append(int(n_max))
    return tuple(out)


# ---------------------------------------------------------------------------------------------------
# kernels of every prefix length in one pass
# ---------------------------------------------------------------------------------------------------


def prefix_ntks(
    X,
    X2=None,
    lengths: Iterable[int] | None = None,
    *,
    block_entries: int | None = None,
) -> dict[int, torch.Tensor]:
    """{L: H_inf(X[:, :L], X2[:, :L])} for every L in ``lengths`` (default: X's full length), float64.

    One pass of the forward accumulation up to max(lengths), in row blocks of about ``block_entries``
    entries (default: cache-sized on CPU, large on CUDA). With X2 = None only the blocks on and above the
    diagonal are computed and mirrored, so the result is exactly symmetric. Equals
    ``rnn_core.infinite_ntk(X[:, :L], X2[:, :L])`` to rounding (tests/test_sample_complexity.py).
    """
    X = as_sequences(X, "X")
    Lfull = X.shape[1]
    lengths = (Lfull,) if lengths is None else tuple(lengths)
    block_rows = None
    if block_entries is not None:
        n2 = X.shape[0] if X2 is None else len(X2)
        block_rows = max(1, block_entries // max(1, n2))
    return infinite_ntk_prefixes(X, X2, lengths=lengths, block_rows=block_rows)


# ---------------------------------------------------------------------------------------------------
# n_eps
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NEps:
    """n_eps of one target at one length, with the measured test-error curve.

    n_eps: the first grid point whose test MSE / Var(y_test) <= threshold; None when none did (not
        reached by n_max = max(grid)).
    ns: the grid points evaluated (in order; the sweep stops at n_eps).
    mse_ratio: test MSE / Var(y_test) at each of ``ns``.
    grid: the full grid; threshold: eps.
    """

    n_eps: int | None
    ns: tuple[int, ...]
    mse_ratio: tuple[float, ...]
    grid: tuple[int, ...]
    threshold: float

    @property
    def reached(self) -> bool:
        return self.n_eps is not None

    @property
    def n_max(self) -> int:
        return self.grid[-1]

    @property
    def n_cross(self) -> float | None:
        """The crossing point of the test-error curve with the threshold, interpolated linearly in
        (log n, log ratio) between the last grid point above the threshold and n_eps; n_eps itself when
        it is the first grid point evaluated; None when not reached.

        A grid of ratio 2 quantizes log2 n_eps to integers; over a short L grid that quantization alone
        can decide a power-law versus exponential comparison, so the fits use this value (see
        :func:`fit_power_vs_exp`) while n_eps stays the grid value of the SPEC's definition.
        """
        if self.n_eps is None:
            return None
        k = self.ns.index(self.n_eps)
        if k == 0:
            return float(self.n_eps)
        n0, n1 = self.ns[k - 1], self.ns[k]
        r0, r1 = self.mse_ratio[k - 1], self.mse_ratio[k]
        if not (math.isfinite(r0) and r0 > self.threshold and r1 > 0.0):
            return float(n1)
        lr0, lr1, lt = math.log(r0), math.log(r1), math.log(self.threshold)
        # r0 > threshold >= r1, so lr0 > lt >= lr1 and t lies in (0, 1]
        t = (lr0 - lt) / (lr0 - lr1)
        return float(math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0))))

    def to_dict(self) -> dict:
        return {
            "n_eps": self.n_eps,
            "n_cross": self.n_cross,
            "ns": list(self.ns),
            "mse_ratio": [float(v) for v in self.mse_ratio],
            "n_max": self.n_max,
            "threshold": self.threshold,
        }


def _check_grid(n_grid) -> tuple[int, ...]:
    grid = tuple(int(v) for v in n_grid)
    if not grid or grid[0] < 1 or any(b <= a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"n_grid must be strictly increasing positive integers, got {tuple(n_grid)}")
    if any(b > 2 * a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"n_grid must be geometric with ratio <= 2 between neighbours (SPEC), got {grid}")
    return grid


def n_eps_table(
    X_train,
    X_test,
    labels: Mapping[int, Mapping[str, tuple]],
    n_grid: Sequence[int],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    rel_jitter: float = 1e-12,
    memory_budget: int | None = None,
    block_entries: int | None = None,
) -> dict[str, dict[int, NEps]]:
    """n_eps for every (target name, length) from one training draw and one test draw.

    X_train: (n_max, L_max, d) with n_max >= max(n_grid); X_test: (n_test, L_max, d), same device.
    labels: {L: {name: (y_train, y_test)}} raw labels of the length-L prefixes (y_train of length >=
        max(n_grid), y_test of length n_test). Training uses the first n rows for each n of the grid.
    Returns {name: {L: NEps}}. See the module docstring for the definition and the memory policy.
    """
    grid = _check_grid(n_grid)
    if not (isinstance(threshold, numbers.Real) and 0.0 < threshold < 1.0):
        raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
    Xtr = as_sequences(X_train, "X_train")
    Xte = as_sequences(X_test, "X_test", d=Xtr.shape[2], device=Xtr.device)
    if Xtr.shape[0] < grid[-1]:
        raise ValueError(f"X_train holds {Xtr.shape[0]} sequences, fewer than max(n_grid) = {grid[-1]}")
    lengths = sorted(int(L) for L in labels)
    if not lengths or lengths[0] < 1 or lengths[-1] > min(Xtr.shape[1], Xte.shape[1]):
        raise ValueError(f"label lengths must lie in 1..{min(Xtr.shape[1], Xte.shape[1])}, got {lengths}")
    budget = _DEFAULT_MEMORY_BUDGET if memory_budget is None else int(memory_budget)
    n_test = Xte.shape[0]
    # per (L, name): labels as float64 tensors on the kernel's device
    lab: dict[int, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    for L in lengths:
        lab[L] = {}
        for name, (ytr, yte) in labels[L].items():
            ytr_t = torch.as_tensor(ytr, dtype=torch.float64).reshape(-1).to(Xtr.device)
            yte_t = torch.as_tensor(yte, dtype=torch.float64).reshape(-1).to(Xtr.device)
            if ytr_t.shape[0] < grid[-1] or yte_t.shape[0] != n_test:
                raise ValueError(
                    f"labels[{L}][{name!r}]: need >= {grid[-1]} training and exactly {n_test} test labels, "
                    f"got {ytr_t.shape[0]} and {yte_t.shape[0]}"
                )
            lab[L][name] = (ytr_t, yte_t)
    names = sorted({name for L in lengths for name in lab[L]})
    curves: dict[tuple[int, str], list[tuple[int, float]]] = {(L, nm): [] for L in lengths for nm in lab[L]}
    found: dict[tuple[int, str], int] = {}
    for n in grid:
        active = [L for L in lengths if any((L, nm) not in found for nm in lab[L])]
        if not active:
            break
        per_length = (n + n_test) * n * 8
        group_size = max(1, budget // max(1, per_length))
        for g in range(0, len(active), group_size):
            group = active[g : g + group_size]
            Htr = prefix_ntks(Xtr[:n], None, group, block_entries=block_entries)
            Hte = prefix_ntks(Xte, Xtr[:n], group, block_entries=block_entries)
            for L in group:
                todo = [nm for nm in sorted(lab[L]) if (L, nm) not in found]
                Ytr, Yte = [], []
                for nm in todo:
                    ytr, yte = lab[L][nm]
                    s = Standardizer.fit(ytr[:n])  # standardized on the training set (SPEC section 3)
                    Ytr.append(s(ytr[:n]))
                    Yte.append(s(yte))
                # pop: the n x n kernel of this length is freed as soon as its solve is done
                pred = kernel_regression(Htr.pop(L), torch.stack(Ytr, 1), Hte.pop(L), rel_jitter=rel_jitter)
                for j, nm in enumerate(todo):
                    yte_s = Yte[j]
                    var = float(((yte_s - yte_s.mean()) ** 2).mean())
                    mse = float(((pred[:, j] - yte_s) ** 2).mean())
                    # a constant test label has no variance to explain: the ratio is undefined (never met)
                    ratio = mse / var if var > 0.0 else math.inf
                    curves[(L, nm)].append((n, ratio))
                    if ratio <= threshold:
                        found[(L, nm)] = n
            del Htr, Hte
    out: dict[str, dict[int, NEps]] = {nm: {} for nm in names}
    for (L, nm), pts in curves.items():
        out[nm][L] = NEps(
            n_eps=found.get((L, nm)),
            ns=tuple(p[0] for p in pts),
            mse_ratio=tuple(p[1] for p in pts),
            grid=grid,
            threshold=float(threshold),
        )
    return out


def _draw(recipe: Recipe, L: int, n_max: int, n_test: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    common = dict(regime=recipe.regime, directions=recipe.directions, vocab=recipe.vocab)
    Xtr = make_inputs(n_max, L, recipe.d, seed=recipe.data_seed, separation_floor=recipe.separation_floor, **common)
    # the test split: an independent stream (rnn_core.data.test_seed), no separation floor (as make_dataset)
    Xte = make_inputs(n_test, L, recipe.d, seed=test_seed(recipe.data_seed), **common)
    if device is not None:
        Xtr, Xte = Xtr.to(device), Xte.to(device)
    return Xtr, Xte


def n_eps_curve(
    recipe: Recipe,
    lengths: Sequence[int],
    n_grid: Sequence[int],
    *,
    target_at: Callable[[int], TargetSpec] | None = None,
    n_test: int = 1000,
    threshold: float = DEFAULT_THRESHOLD,
    device=None,
    memory_budget: int | None = None,
) -> dict[int, NEps]:
    """{L: NEps} of one recipe's target over a grid of lengths (prefixes of one draw at max(lengths)).

    recipe: d, regime, directions, vocab, data_seed and separation_floor are used (recipe.n and
        recipe.L are not: the grids fix them; the floor applies to the draw at max(lengths)).
    target_at(L): the TargetSpec at length L (default: recipe.target at every L, which must fit all
        lengths: e.g. an additive target on position 1, or an N-variable target with a fixed lag).
    n_test: size of the independent test draw (seed rnn_core.data.test_seed(data_seed)).
    """
    lengths = tuple(sorted(set(int(L) for L in lengths)))
    if not lengths or lengths[0] < 1:
        raise ValueError(f"lengths must be integers >= 1, got {lengths}")
    grid = _check_grid(n_grid)
    Xtr, Xte = _draw(recipe, lengths[-1], grid[-1], int(n_test), device)
    labels = {}
    for L in lengths:
        spec = recipe.target if target_at is None else target_at(L)
        target = make_target(spec, L, recipe.d)
        labels[L] = {"y": (target(Xtr[:, :L]), target(Xte[:, :L]))}
    table = n_eps_table(Xtr, Xte, labels, grid, threshold=threshold, memory_budget=memory_budget)
    return table["y"]


def n_eps(
    recipe: Recipe,
    n_grid: Sequence[int],
    *,
    n_test: int = 1000,
    threshold: float = DEFAULT_THRESHOLD,
    device=None,
    memory_budget: int | None = None,
) -> NEps:
    """n_eps of ``recipe.target`` at length ``recipe.L`` (recipe.n is ignored: ``n_grid`` fixes n).

    Training sets are the first n sequences of ``make_dataset(recipe, n=max(n_grid))`` (nested), the
    test set is ``make_dataset(recipe, split="test", n=n_test)``; ``n_grid`` strictly increasing with
    neighbour ratio <= 2 (see :func:`geometric_grid`). Returns an :class:`NEps` (n_eps None when the
    threshold is not met by max(n_grid)).
    """
    grid = _check_grid(n_grid)
    Xtr, ytr = make_dataset(recipe, n=grid[-1])
    Xte, yte = make_dataset(recipe, split="test", n=int(n_test))
    if device is not None:
        Xtr, Xte = Xtr.to(device), Xte.to(device)
    table = n_eps_table(
        Xtr, Xte, {recipe.L: {"y": (ytr, yte)}}, grid, threshold=threshold, memory_budget=memory_budget
    )
    return table["y"][recipe.L]


# ---------------------------------------------------------------------------------------------------
# power law versus exponential
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplexityFit:
    """Least-squares fits of log n_eps over the lengths with a finite n_eps.

    exponent a and intercept b of log n = a log L + b, with its residual sum of squares rss_power;
    rate a' and intercept b' of log n = a' L + b', with rss_exp; finite_points; the points used.
    Fits need >= 2 distinct lengths; with fewer every field but finite_points is NaN.
    """

    exponent: float
    intercept: float
    rss_power: float
    rate: float
    intercept_exp: float
    rss_exp: float
    finite_points: int
    lengths: tuple[int, ...] = field(default_factory=tuple)
    n_eps: tuple[float, ...] = field(default_factory=tuple)


def _lstsq_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """slope, intercept, residual sum of squares of y ~ slope x + intercept (float64)."""
    A = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    r = y - A @ coef
    return float(coef[0]), float(coef[1]), float(r @ r)


def fit_power_vs_exp(lengths: Sequence[int], n_eps_values: Sequence[float | None]) -> ComplexityFit:
    """Fit log n_eps against log L (power law) and against L (exponential) over the finite points.

    n_eps_values may be grid values or interpolated crossings (:attr:`NEps.n_cross`); None = not reached.
    """
    if len(lengths) != len(n_eps_values):
        raise ValueError("lengths and n_eps_values must have the same length")
    pts = sorted((int(L), float(v)) for L, v in zip(lengths, n_eps_values) if v is not None and math.isfinite(v))
    if any(L < 1 or v <= 0 for L, v in pts):
        raise ValueError(f"lengths and n_eps must be >= 1, got {pts}")
    k = len(pts)
    Ls = tuple(p[0] for p in pts)
    ns = tuple(p[1] for p in pts)
    if len(set(Ls)) < 2:
        nan = math.nan
        return ComplexityFit(nan, nan, nan, nan, nan, nan, k, Ls, ns)
    x = np.array(Ls, dtype=np.float64)
    y = np.log(np.array(ns, dtype=np.float64))
    a, b, rss_p = _lstsq_line(np.log(x), y)
    a2, b2, rss_e = _lstsq_line(x, y)
    return ComplexityFit(a, b, rss_p, a2, b2, rss_e, k, Ls, ns)


def doubling_ratios(lengths: Sequence[int], n_eps_values: Sequence[int | None]) -> dict[int, float]:
    """{L: n_eps(2L) / n_eps(L)} for every L whose double is on the grid and both are finite.

    A power law n ~ L^a gives the constant 2^a; an exponential gives ratios that grow with L."""
    m = {int(L): v for L, v in zip(lengths, n_eps_values) if v is not None}
    return {L: m[2 * L] / m[L] for L in sorted(m) if 2 * L in m and m[L] > 0}


# Slack in the rss comparison: residual sums that differ by rounding only count as a tie (relative
# 1e-12 of the larger, absolute 1e-20: an exact fit of log n leaves ~1e-30, not 0).
_RSS_TIE = 1e-12
_RSS_FLOOR = 1e-20


def complexity_rule(
    lengths: Sequence[int],
    n_eps_values: Sequence[float | None],
    exponent_bound: float | None,
    *,
    min_points: int = MIN_POINTS,
) -> tuple[bool | None, ComplexityFit, str]:
    """The CPLX-ADD pass rule on one n_eps(L) curve: (ok, fit, reason).

    ok None (inconclusive) with fewer than ``min_points`` finite lengths; else True iff
    (rss_power <= rss_exp (up to rounding) or max/min n_eps <= FLAT_GROWTH: no resolvable growth) and
    (exponent_bound is None or a <= exponent_bound).
    exponent_bound None means no polynomial degree is declared (f = sin, cos): only the shape is tested.
    """
    fit = fit_power_vs_exp(lengths, n_eps_values)
    if fit.finite_points < min_points or len(set(fit.lengths)) < min_points:
        return None, fit, f"only {fit.finite_points} lengths reached n_eps (need {min_points}): inconclusive"
    scale = max(fit.rss_power, fit.rss_exp, 1e-300)
    flat = max(fit.n_eps) <= FLAT_GROWTH * min(fit.n_eps)
    shape_ok = flat or fit.rss_power <= fit.rss_exp + _RSS_TIE * scale + _RSS_FLOOR
    exp_ok = exponent_bound is None or fit.exponent <= exponent_bound
    if shape_ok and exp_ok and flat:
        reason = f"no growth beyond one grid step over the lengths (max/min n_eps <= {FLAT_GROWTH:g})"
    elif shape_ok and exp_ok:
        reason = f"power law fits (rss {fit.rss_power:.3g} <= {fit.rss_exp:.3g}), exponent {fit.exponent:.3g}"
    elif not shape_ok:
        reason = f"exponential fits better (rss_exp {fit.rss_exp:.3g} < rss_power {fit.rss_power:.3g})"
    else:
        reason = f"exponent {fit.exponent:.3g} > bound {exponent_bound:g}"
    return bool(shape_ok and exp_ok), fit, reason
