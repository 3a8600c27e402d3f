"""Sample complexity n_eps of kernel regression with H_inf, and the power-law versus exponential rule.

Shared by CPLX-ADD, CPLX-NVAR and RAND-LABEL (SPEC section 4).

n_eps. For a target y and a geometric grid of training-set sizes n_1 < n_2 < ... (ratio <= 2),

    n_eps = min { n_k : MSE_test(f_n) <= eps * Var_test(y) },   eps = 0.25,

where f_n(x) = H_inf(x, X_n) (H_inf(X_n, X_n) + j I)^-1 y_n is the ridge-less kernel-regression
predictor (rnn_core.linalg.kernel_regression, relative jitter j = rel_jitter tr H / n) on the first n
training sequences (nested subsets of one draw), labels standardized on those n labels (SPEC section 3:
the same affine map applies to the test labels), MSE_test and Var_test over an independent test draw
(population variance). n_eps = None ("not reached") when no grid point meets the threshold. It is the
*first* grid point that meets it (the test error of ridge-less regression need not be monotone in n).
``NEps.n_cross`` interpolates the crossing in (log n, log MSE) between the two grid points around it.

Kernels. The forward accumulation of H_inf (rnn_core.kernels) visits l = 1..L once, and the accumulator
after step l is the kernel of the length-l prefixes, so every length of an L grid comes from one pass
(prefixes of one draw at the longest length: the steps are i.i.d., so a prefix is a draw of length L).
Along the n grid the kernels grow by blocks (:class:`PrefixKernels`): going from n to n' computes only
the new rows (their diagonal block with exact self-pairs, the block against the first n rows, and the
test rows against the new columns), so an n sweep costs one kernel at its final n, not one per grid
point. A length leaves the sweep once its n_eps is found; all targets of one length share a solve.

Memory. The growing kernels of the lengths still in the sweep are held at once:
8 (n + n_test) n bytes per length; when the lengths at n_max would exceed ``memory_budget`` they are
swept in groups (each group runs its own pass). A solve copies one n x n matrix.

Rule (CPLX-ADD, CPLX-NVAR). Over the lengths with a finite n_eps, :func:`claims.fits.power_vs_exponential`
fits log n_cross against log L (power law, exponent a) and against L (exponential); the example holds
when at least ``min_points`` = 4 lengths are finite, the power law's residual sum is at most the
exponential's (ties go to the power law) or the curve varies by at most one grid step (FLAT_GROWTH: no
resolvable growth, a degree-0 polynomial), and a <= the exponent bound. Fewer finite points:
inconclusive (None), never a pass.

Censored growth (reported, not part of the rule). :func:`censored_growth` fits the same two laws over
*every* length by :func:`claims.fits.growth_law`: a length whose n_eps was not reached is the
right-censored point "n_eps > n_max", one reached at the grid's first point the left-censored
"n_eps <= n_min", the others exact at n_cross; it gives the exponent with its 95% interval, the preferred
law and the evidence ratio (dropping the unreached lengths biases the exponent down:
tests/test_fits.py).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from claims.fits import GrowthFit, GrowthLaw, growth_law, power_vs_exponential
from rnn_core._checks import as_sequences
from rnn_core.data import Recipe, make_dataset, make_inputs, test_seed
from rnn_core.kernels import infinite_ntk_prefixes
from rnn_core.linalg import kernel_regression
from rnn_core.targets import Standardizer, TargetSpec, make_target

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_POINTS",
    "FLAT_GROWTH",
    "NEps",
    "PrefixKernels",
    "geometric_grid",
    "kernel_memory_bytes",
    "prefix_ntks",
    "n_eps_table",
    "test_mse_ratios",
    "draw_inputs",
    "independent_data",
    "n_eps",
    "n_eps_curve",
    "complexity_rule",
    "censored_growth",
    "curve_summary",
    "doubling_ratios",
]

DEFAULT_THRESHOLD = 0.25  # test MSE <= 0.25 Var(y): the SPEC's eps
MIN_POINTS = 4  # finite lengths needed before the power-law / exponential comparison means anything
# A curve whose n_eps varies by at most one grid step (factor 2) over the lengths shows no resolvable
# growth: it is bounded by a constant on the grid (a polynomial of degree 0), and comparing two fits of
# noise would decide the rule by chance.
FLAT_GROWTH = 2.0
_DEFAULT_MEMORY_BUDGET = 4 << 30  # bytes of growing kernels held at once


# ---------------------------------------------------------------------------------------------------
# grids and memory
# ---------------------------------------------------------------------------------------------------


def kernel_memory_bytes(n: int, n_test: int, lengths: int = 1) -> int:
    """Peak bytes of an n sweep up to n training and n_test test sequences with ``lengths`` lengths in
    the sweep: the growing kernels (n + n_test) n of the lengths held at once (a group within the memory
    budget), a quarter more for the block being added, and two n x n copies (the grown matrix while the
    old one is copied in; the solve's factor), float64."""
    per_length = 8 * (n + n_test) * n
    held = min(max(1, int(lengths)), max(1, _DEFAULT_MEMORY_BUDGET // max(1, per_length)))
    return int(1.25 * held * per_length + 16 * n * n)


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


def _check_grid(n_grid) -> tuple[int, ...]:
    grid = tuple(int(v) for v in n_grid)
    if not grid or grid[0] < 1 or any(b <= a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"n_grid must be strictly increasing positive integers, got {tuple(n_grid)}")
    if any(b > 2 * a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"n_grid must be geometric with ratio <= 2 between neighbours (SPEC), got {grid}")
    return grid


# ---------------------------------------------------------------------------------------------------
# kernels of every prefix length, grown along the n grid
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
    entries (default: the core's). With X2 = None only the blocks on and above the diagonal are computed
    and mirrored, so the result is exactly symmetric and self-pairs have cosine exactly 1.
    """
    X = as_sequences(X, "X")
    lengths = (X.shape[1],) if lengths is None else tuple(lengths)
    block_rows = None
    if block_entries is not None:
        n2 = X.shape[0] if X2 is None else len(X2)
        block_rows = max(1, block_entries // max(1, n2))
    return infinite_ntk_prefixes(X, X2, lengths=lengths, block_rows=block_rows)


class PrefixKernels:
    """H_inf of the length-L prefixes of the first n training rows (and of the test rows against them),
    grown on demand for a fixed set of lengths.

    ``extend(n)`` adds rows n_old..n: their diagonal block (computed symmetric, so self-pairs are exact),
    their block against the first n_old rows (mirrored), and, unless ``test=False``, the test rows
    against the new columns. ``train(L, n)`` and ``test(L, n)`` are views of the leading blocks, equal to
    ``rnn_core.infinite_ntk`` of the prefixes to rounding (tests/test_sample_complexity.py).
    """

    def __init__(self, X_train, X_test, lengths: Iterable[int], *, block_entries: int | None = None) -> None:
        self.Xtr = as_sequences(X_train, "X_train")
        self.Xte = (None if X_test is None
                    else as_sequences(X_test, "X_test", d=self.Xtr.shape[2], device=self.Xtr.device))
        self.lengths = tuple(sorted({int(L) for L in lengths}))
        if not self.lengths or self.lengths[0] < 1 or self.lengths[-1] > self.Xtr.shape[1]:
            raise ValueError(f"lengths must lie in 1..{self.Xtr.shape[1]}, got {self.lengths}")
        if self.Xte is not None and self.Xte.shape[1] < self.lengths[-1]:
            raise ValueError(f"X_test is shorter ({self.Xte.shape[1]}) than the longest length {self.lengths[-1]}")
        self.block_entries = block_entries
        self.n = 0  # training rows in the train kernels
        self.n_test_cols = 0  # training columns in the test kernels
        dev = self.Xtr.device
        n_te = 0 if self.Xte is None else self.Xte.shape[0]
        self._tr = {L: torch.empty((0, 0), dtype=torch.float64, device=dev) for L in self.lengths}
        self._te = {L: torch.empty((n_te, 0), dtype=torch.float64, device=dev) for L in self.lengths}

    def _pk(self, A, B) -> dict[int, torch.Tensor]:
        return prefix_ntks(A, B, self.lengths, block_entries=self.block_entries)

    def extend(self, n: int, *, test: bool = True) -> None:
        """Grow the train kernels to n rows (and the test kernels to n columns unless ``test=False``)."""
        n = int(n)
        if n > self.Xtr.shape[0]:
            raise ValueError(f"only {self.Xtr.shape[0]} training sequences, asked for {n}")
        a = self.n
        if n > a:
            Xlen = self.Xtr[:, : self.lengths[-1]]
            diag = self._pk(Xlen[a:n], None)
            off = self._pk(Xlen[a:n], Xlen[:a]) if a > 0 else None
            for L in self.lengths:
                H = torch.empty((n, n), dtype=torch.float64, device=self.Xtr.device)
                H[:a, :a] = self._tr[L]
                H[a:n, a:n] = diag[L]
                if off is not None:
                    H[a:n, :a] = off[L]
                    H[:a, a:n] = off[L].T
                self._tr[L] = H
            self.n = n
        if test and self.Xte is not None and n > self.n_test_cols:
            b = self.n_test_cols
            blk = self._pk(self.Xte[:, : self.lengths[-1]], self.Xtr[b:n, : self.lengths[-1]])
            for L in self.lengths:
                self._te[L] = torch.cat([self._te[L], blk[L]], dim=1)
            self.n_test_cols = n

    def train(self, L: int, n: int | None = None) -> torch.Tensor:
        n = self.n if n is None else int(n)
        if n > self.n:
            raise ValueError(f"train kernel has {self.n} rows, asked for {n}: call extend first")
        return self._tr[L][:n, :n]

    def test(self, L: int, n: int | None = None) -> torch.Tensor:
        n = self.n_test_cols if n is None else int(n)
        if n > self.n_test_cols:
            raise ValueError(f"test kernel has {self.n_test_cols} columns, asked for {n}: call extend first")
        return self._te[L][:, :n]

    def drop(self, L: int) -> None:
        """Free the kernels of length L (it has left the sweep); later ``extend`` calls skip it."""
        if L in self.lengths:
            self.lengths = tuple(x for x in self.lengths if x != L)
            del self._tr[L], self._te[L]


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
        """The crossing of the test-error curve with the threshold, interpolated linearly in
        (log n, log ratio) between the last grid point above the threshold and n_eps; n_eps itself when
        it is the first grid point evaluated; None when not reached.

        A grid of ratio 2 quantizes log2 n_eps to integers; over a short L grid that quantization alone
        can decide a power-law versus exponential comparison, so the fits use this value while n_eps stays
        the grid value of the SPEC's definition.
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
        t = (lr0 - lt) / (lr0 - lr1)  # r0 > threshold >= r1, so t lies in (0, 1]
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


def test_mse_ratios(kernels: PrefixKernels, L: int, n: int, labels: Sequence[tuple[torch.Tensor, torch.Tensor]],
                    *, rel_jitter: float = 1e-12) -> list[float]:
    """Test MSE / Var(y_test) of the length-L kernel regression on the first n training rows, for each
    (y_train, y_test) of ``labels`` (one solve for all), labels standardized on the n training labels.

    A constant target (test labels equal up to float64 rounding) has no variance to explain, so n_eps is
    undefined: ValueError, never a silent "not reached" (a target on X_1 alone in the normalized regime,
    where X_1 = e_d for every sequence, once read as a failed growth table)."""
    Ytr, Yte = [], []
    for ytr, yte in labels:
        # relative spread: a constant label's standard deviation is rounding (~1e-16 of its size)
        if float(yte.std()) <= 1e-12 * max(float(yte.abs().max()), 1e-300):
            raise ValueError(f"the target is constant on the test inputs (L = {L}): Var(y_test) = 0, n_eps is "
                             "undefined")
        s = Standardizer.fit(ytr[:n])  # standardized on the training set (SPEC section 3)
        Ytr.append(s(ytr[:n]))
        Yte.append(s(yte))
    pred = kernel_regression(kernels.train(L, n), torch.stack(Ytr, 1), kernels.test(L, n), rel_jitter=rel_jitter)
    out = []
    for j, yte_s in enumerate(Yte):
        var = float(((yte_s - yte_s.mean()) ** 2).mean())
        mse = float(((pred[:, j] - yte_s) ** 2).mean())
        out.append(mse / var)
    return out


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
    per_length = 8 * (grid[-1] + n_test) * grid[-1]
    group_size = max(1, budget // max(1, per_length))
    for g in range(0, len(lengths), group_size):
        group = lengths[g : g + group_size]
        pk = PrefixKernels(Xtr, Xte, group, block_entries=block_entries)
        for n in grid:
            active = [L for L in pk.lengths if any((L, nm) not in found for nm in lab[L])]
            for L in [L for L in pk.lengths if L not in active]:
                pk.drop(L)
            if not active:
                break
            pk.extend(n)
            for L in active:
                todo = [nm for nm in sorted(lab[L]) if (L, nm) not in found]
                ratios = test_mse_ratios(pk, L, n, [lab[L][nm] for nm in todo], rel_jitter=rel_jitter)
                for nm, ratio in zip(todo, ratios):
                    curves[(L, nm)].append((n, ratio))
                    if ratio <= threshold:
                        found[(L, nm)] = n
        del pk
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


def draw_inputs(recipe: Recipe, L: int, n_max: int, n_test: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, test) inputs of ``recipe`` at length L: n_max sequences from data_seed (with the
    recipe's separation floor) and n_test from the independent test stream (no floor, as make_dataset)."""
    common = dict(regime=recipe.regime, directions=recipe.directions, vocab=recipe.vocab)
    Xtr = make_inputs(n_max, L, recipe.d, seed=recipe.data_seed, separation_floor=recipe.separation_floor, **common)
    Xte = make_inputs(n_test, L, recipe.d, seed=test_seed(recipe.data_seed), **common)
    if device is not None:
        Xtr, Xte = Xtr.to(device), Xte.to(device)
    return Xtr, Xte


def independent_data(recipe: Recipe) -> Recipe:
    """The recipe with its data seed mixed with its target seed.

    Hypothesis draws small seeds (0 above all) far more often than uniform ones, so a cell's examples
    often share data_seed with different target seeds; at infinite width those examples are nearly the
    same example (the kernel is rotation-invariant, so another beta barely moves n_eps) and the
    sequential test would count one draw several times. Mixing the two seeds gives every distinct
    (data, target) pair its own inputs; the stored recipe carries the mixed seed, so it reproduces alone.
    """
    seq = np.random.SeedSequence([int(recipe.data_seed), int(recipe.target.seed), 0xDA7A])
    mixed = int(seq.generate_state(1)[0])
    return recipe.replace(data_seed=mixed % (2**31))


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
    Xtr, Xte = draw_inputs(recipe, lengths[-1], grid[-1], int(n_test), device)
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
    test set is ``make_dataset(recipe, split="test", n=n_test)``.
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


def doubling_ratios(lengths: Sequence[int], n_eps_values: Sequence[float | None]) -> dict[int, float]:
    """{L: n_eps(2L) / n_eps(L)} for every L whose double is on the grid and both are finite.

    A power law n ~ L^a gives the constant 2^a; an exponential gives ratios that grow with L."""
    m = {int(L): v for L, v in zip(lengths, n_eps_values) if v is not None}
    return {L: m[2 * L] / m[L] for L in sorted(m) if 2 * L in m and m[L] > 0}


def complexity_rule(
    lengths: Sequence[int],
    n_eps_values: Sequence[float | None],
    exponent_bound: float | None,
    *,
    min_points: int = MIN_POINTS,
) -> tuple[bool | None, GrowthFit, str]:
    """The CPLX-ADD pass rule on one n_eps(L) curve: (ok, fit, reason); see the module docstring.

    n_eps_values: grid values or interpolated crossings (NEps.n_cross); None = not reached.
    exponent_bound None: no polynomial degree is declared (f = sin, cos): only the shape is tested.
    """
    if len(lengths) != len(n_eps_values):
        raise ValueError("lengths and n_eps_values must have the same length")
    fit = power_vs_exponential(lengths, n_eps_values)
    if fit.n < min_points or len(set(fit.xs)) < min_points:
        return None, fit, f"only {fit.n} lengths reached n_eps (need {min_points}): inconclusive"
    flat = max(fit.ys) <= FLAT_GROWTH * min(fit.ys)
    shape_ok = flat or bool(fit.power_fits_better)
    exponent = fit.power.slope
    exp_ok = exponent_bound is None or exponent <= exponent_bound
    if shape_ok and exp_ok and flat:
        reason = f"no growth beyond one grid step over the lengths (max/min n_eps <= {FLAT_GROWTH:g})"
    elif shape_ok and exp_ok:
        reason = (f"power law fits (rss {fit.power.rss:.3g} <= {fit.exponential.rss:.3g}), "
                  f"{fit.power.describe('a')}")
    elif not shape_ok:
        reason = f"exponential fits better (rss_exp {fit.exponential.rss:.3g} < rss_power {fit.power.rss:.3g})"
    else:
        reason = f"exponent {exponent:.3g} > bound {exponent_bound:g}"
    return bool(shape_ok and exp_ok), fit, reason


def censored_growth(lengths: Sequence[int], n_eps_values: Sequence[float | None], n_max: float,
                    n_min: float | None = None) -> GrowthLaw:
    """:func:`claims.fits.growth_law` of n_eps(L) over every length: None (not reached) is "n_eps > n_max",
    a value <= n_min (reached at the grid's first point) is "n_eps <= n_min", any other value exact."""
    lows, highs = [], []
    for v in n_eps_values:
        if v is None:
            lows.append(float(n_max))
            highs.append(None)
        elif n_min is not None and v <= n_min:
            lows.append(None)
            highs.append(float(n_min))
        else:
            lows.append(float(v))
            highs.append(float(v))
    return growth_law(lengths, lows, highs)


def curve_summary(fit: GrowthFit, exponent_bound: float | None, growth: GrowthLaw | None = None
                  ) -> tuple[float, dict]:
    """(margin, measured) of one curve's rule (shared by CPLX-ADD and CPLX-NVAR).

    margin (<= 1 passes): the shape part is the smaller of rss_power / rss_exp and (max/min n) /
    FLAT_GROWTH (it passes when either does); with an exponent bound, the larger of that and a / bound.
    NaN without enough points. ``growth`` (:func:`censored_growth`, reported only) adds the censored
    fit: "censored_exponent" with "censored_exponent_lo" / "_hi" (its 95% interval), "censored_rate",
    "evidence_ratio" (power / exponential), "censored_points" and "growth_law".
    """
    measured = {
        "finite_points": fit.n,
        "exponent": fit.power.slope,
        "exponent_se": fit.power.stderr,
        "rate": fit.exponential.slope,
        "rss_power": fit.power.rss,
        "rss_exp": fit.exponential.rss,
    }
    if growth is not None:
        lo, hi = growth.exponent_ci if growth.exponent_ci is not None else (math.nan, math.nan)
        measured.update(censored_exponent=growth.exponent, censored_exponent_lo=lo, censored_exponent_hi=hi,
                        censored_rate=growth.rate, evidence_ratio=growth.evidence_ratio,
                        censored_points=growth.censored, growth_law=growth.law or "none")
    if fit.n < MIN_POINTS:
        return math.nan, measured
    floor = 1e-20  # an exact fit leaves rounding (~1e-30), not 0
    rp, re = fit.power.rss, fit.exponential.rss
    if re > floor:
        shape = min(rp / re, 1e9)
    else:  # exponential fits exactly: the power law is worse unless it fits exactly too (a tie)
        shape = 1.0 if rp <= floor else 1e9
    shape = min(shape, (max(fit.ys) / min(fit.ys)) / FLAT_GROWTH)
    margin = max(shape, fit.power.slope / exponent_bound) if exponent_bound is not None else shape
    return float(margin), measured
