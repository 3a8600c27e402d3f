"""Target functions of SPEC section 3: additive, N-variable l_0-local, and random labels.

* additive:  y = sum_{l in S} f(beta_l^T X_l), beta_l unit vectors in R^d (one per position in S).
* N-variable, l_0-local: y = f(beta^T [X_{l_1}; ...; X_{l_N}]), beta a unit vector in R^{N d},
  positions l_1 < ... < l_N with l_N = L - k (lag k, distance to the output) and l_1 = l_N - l_0
  (span l_0).  The N - 2 inner positions are spread evenly between l_1 and l_N:
  l_i = l_1 + round((i - 1) l_0 / (N - 1)) (round half up), which is strictly increasing whenever
  N <= l_0 + 1.  With f(z) = z^2 the target contains the cross terms (beta_i^T X_{l_i})(beta_j^T X_{l_j}),
  so it is not additive.
* random: y ~ N(0, 1) independent of x (the control of RAND-LABEL / GEN-ADD).

f is one of z, z^2, z^3, sin(pi z), cos(pi z), named "z", "z2", "z3", "sin", "cos".

All directions beta are drawn from ``numpy.random.default_rng(spec.seed)`` so a target is reproducible
from its :class:`TargetSpec` alone, and the train and test splits of a recipe share the same target.
Positions are 1-based, as in the paper.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from rnn_core._checks import as_sequences, check_positive_int

__all__ = [
    "FAMILIES",
    "F_NAMES",
    "F_DEGREE",
    "TargetSpec",
    "Target",
    "make_target",
    "nvar_positions",
    "Standardizer",
    "additive_fit_residual",
]

FAMILIES = ("additive", "nvar", "random")
F_NAMES = ("z", "z2", "z3", "sin", "cos")

_F: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "z": lambda z: z,
    "z2": lambda z: z * z,
    "z3": lambda z: z * z * z,
    "sin": lambda z: torch.sin(math.pi * z),
    "cos": lambda z: torch.cos(math.pi * z),
}
#: polynomial degree of each f (sin / cos are not polynomials; their degree is reported as None)
F_DEGREE = {"z": 1, "z2": 2, "z3": 3, "sin": None, "cos": None}


@dataclass(frozen=True)
class TargetSpec:
    """Serializable description of a target (SPEC section 3).

    family: "additive" | "nvar" | "random".
    f: one of F_NAMES; defaults to "z2" for additive and nvar, must be None for random.
    positions: additive only; 1-based positions S (strictly increasing after sorting); default (1,).
    N, span, lag: nvar only; N >= 1 variables, span l_0 >= 0, lag k >= 0, with N <= l_0 + 1 and
        (N = 1 iff l_0 = 0). Defaults N = 2, span = N - 1, lag = 0.
    seed: integer >= 0 for the directions beta (and for the random labels' stream).

    Fields that do not apply to the family must be None (a mismatch raises, so that a recipe never
    carries a silently ignored parameter). Length-dependent checks (positions <= L, l_0 + k <= L - 1)
    happen in :meth:`check_length`, called by ``Recipe`` and :func:`make_target`.
    """

    family: str = "additive"
    f: str | None = None
    positions: tuple[int, ...] | None = None
    N: int | None = None
    span: int | None = None
    lag: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"TargetSpec.family must be one of {FAMILIES}, got {self.family!r}")
        seed = check_positive_int(self.seed, "TargetSpec.seed", minimum=0)
        object.__setattr__(self, "seed", seed)
        if self.family == "random":
            for name in ("f", "positions", "N", "span", "lag"):
                if getattr(self, name) is not None:
                    raise ValueError(f"TargetSpec.{name} does not apply to family 'random'; leave it None")
            return
        f = "z2" if self.f is None else self.f
        if f not in F_NAMES:
            raise ValueError(f"TargetSpec.f must be one of {F_NAMES}, got {self.f!r}")
        object.__setattr__(self, "f", f)
        if self.family == "additive":
            for name in ("N", "span", "lag"):
                if getattr(self, name) is not None:
                    raise ValueError(f"TargetSpec.{name} applies only to family 'nvar'; leave it None for 'additive'")
            pos = (1,) if self.positions is None else self.positions
            if isinstance(pos, (str, bytes)) or not hasattr(pos, "__iter__"):
                raise ValueError(f"TargetSpec.positions must be a sequence of 1-based integers, got {pos!r}")
            pos = tuple(check_positive_int(p, "TargetSpec.positions[i]", minimum=1) for p in pos)
            if len(pos) == 0:
                raise ValueError("TargetSpec.positions must hold at least one position (1-based)")
            if len(set(pos)) != len(pos):
                raise ValueError(f"TargetSpec.positions must be distinct, got {pos}")
            object.__setattr__(self, "positions", tuple(sorted(pos)))
            return
        # nvar
        if self.positions is not None:
            raise ValueError(
                "TargetSpec.positions does not apply to family 'nvar' (positions follow from N, span, lag)"
            )
        N = 2 if self.N is None else check_positive_int(self.N, "TargetSpec.N", minimum=1)
        span = (N - 1) if self.span is None else check_positive_int(self.span, "TargetSpec.span", minimum=0)
        lag = 0 if self.lag is None else check_positive_int(self.lag, "TargetSpec.lag", minimum=0)
        if N > span + 1:
            raise ValueError(f"TargetSpec: N = {N} positions need span l_0 >= N - 1 = {N - 1}, got span = {span}")
        if N == 1 and span != 0:
            raise ValueError(f"TargetSpec: N = 1 has a single position, so span must be 0, got {span}")
        object.__setattr__(self, "N", N)
        object.__setattr__(self, "span", span)
        object.__setattr__(self, "lag", lag)

    # -- length-dependent validation -------------------------------------------------------------
    def check_length(self, L: int) -> None:
        """Raise ValueError when the spec does not fit sequences of length L."""
        if self.family == "additive":
            bad = [p for p in self.positions if p > L]
            if bad:
                raise ValueError(f"TargetSpec.positions must lie in 1..L = 1..{L}, got {self.positions}")
        elif self.family == "nvar":
            if self.span + self.lag > L - 1:
                raise ValueError(
                    f"TargetSpec: span + lag must be <= L - 1 = {L - 1} (so that l_1 = L - lag - span >= 1), "
                    f"got span = {self.span}, lag = {self.lag}"
                )

    # -- serialization ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        if d["positions"] is not None:
            d["positions"] = list(d["positions"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TargetSpec":
        if not isinstance(d, dict):
            raise ValueError(f"TargetSpec.from_dict expects a dict, got {type(d).__name__}")
        allowed = {"family", "f", "positions", "N", "span", "lag", "seed"}
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(f"TargetSpec.from_dict: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")
        d = dict(d)
        if d.get("positions") is not None:
            d["positions"] = tuple(d["positions"])
        return cls(**d)


def nvar_positions(N: int, span: int, lag: int, L: int) -> tuple[int, ...]:
    """1-based positions l_1 < ... < l_N with l_N = L - lag, l_1 = l_N - span, inner ones evenly spread."""
    l_N = L - lag
    l_1 = l_N - span
    if l_1 < 1:
        raise ValueError(f"span + lag must be <= L - 1 = {L - 1}, got span = {span}, lag = {lag}")
    if N == 1:
        return (l_N,)
    # round-half-up of (i * span / (N - 1)) in integer arithmetic, i = 0..N-1
    return tuple(l_1 + (2 * i * span + (N - 1)) // (2 * (N - 1)) for i in range(N))


def _unit_rows(rng: np.random.Generator, k: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((k, dim))
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    # a standard normal vector has norm 0 with probability 0; the floor only avoids 0/0
    return v / np.maximum(norms, 1e-300)


class Target:
    """A callable target X (n, L, d) -> y (n,) float64 with its structure exposed.

    Attributes: family, f, L, d, positions (1-based tuple; () for random), N (number of positions),
    span (l_0 = max - min position; None for random), lag (k = L - max position; None for random),
    betas (float64 tensor: (|S|, d) for additive, (N d,) for nvar, None for random).
    """

    def __init__(self, spec: TargetSpec, L: int, d: int) -> None:
        spec.check_length(L)
        self.spec = spec
        self.family = spec.family
        self.f = spec.f
        self.L = L
        self.d = d
        rng = np.random.default_rng(spec.seed)
        if spec.family == "additive":
            self.positions = tuple(spec.positions)
            self.betas = torch.from_numpy(_unit_rows(rng, len(self.positions), d))
        elif spec.family == "nvar":
            self.positions = nvar_positions(spec.N, spec.span, spec.lag, L)
            self.betas = torch.from_numpy(_unit_rows(rng, 1, spec.N * d)[0])
        else:
            self.positions = ()
            self.betas = None
        self.N = len(self.positions)
        self.span = (max(self.positions) - min(self.positions)) if self.positions else None
        self.lag = (L - max(self.positions)) if self.positions else None

    def __call__(self, X) -> torch.Tensor:
        X = as_sequences(X, "X", d=self.d)
        if X.shape[1] != self.L:
            raise ValueError(f"X has length L = {X.shape[1]}, but the target was built for L = {self.L}")
        idx = [p - 1 for p in self.positions]
        if self.family == "additive":
            betas = self.betas.to(X.device)
            z = torch.einsum("nsd,sd->ns", X[:, idx, :], betas)
            return _F[self.f](z).sum(dim=1)
        if self.family == "nvar":
            z = X[:, idx, :].reshape(X.shape[0], -1) @ self.betas.to(X.device)
            return _F[self.f](z)
        # Random labels: the stream is keyed by (seed, digest of X's bytes) so that the same inputs
        # always get the same labels while a fresh draw of inputs (e.g. the test split) gets fresh,
        # independent labels. The labels' law does not depend on x.
        arr = np.ascontiguousarray(X.detach().cpu().numpy())
        digest = int.from_bytes(hashlib.blake2b(arr.tobytes(), digest_size=8).digest(), "little")
        rng = np.random.default_rng([self.spec.seed, digest])
        return torch.from_numpy(rng.standard_normal(X.shape[0])).to(X.device)

    def __repr__(self) -> str:
        return (
            f"Target(family={self.family!r}, f={self.f!r}, L={self.L}, d={self.d}, positions={self.positions}, "
            f"span={self.span}, lag={self.lag})"
        )


def make_target(spec: TargetSpec, L: int, d: int) -> Target:
    """Build the target of ``spec`` for sequences of length L and dimension d (see :class:`Target`)."""
    if not isinstance(spec, TargetSpec):
        raise ValueError(f"spec must be a TargetSpec, got {type(spec).__name__}")
    L = check_positive_int(L, "L")
    d = check_positive_int(d, "d")
    return Target(spec, L, d)


@dataclass(frozen=True)
class Standardizer:
    """The affine map y -> (y - mean) / std fitted on the training labels (population std).

    When the training labels are constant (std <= 1e-12 (1 + |mean|), i.e. zero up to rounding) the map
    only centres: std is set to 1, because dividing by a rounding-level std would blow the labels up.
    """

    mean: float
    std: float

    @classmethod
    def fit(cls, y) -> "Standardizer":
        t = _as_vec(y, "y")
        if t.numel() < 1:
            raise ValueError("y must hold at least one label to fit a Standardizer")
        mean = float(t.mean())
        std = float(t.std(correction=0)) if t.numel() > 1 else 0.0
        if not std > 1e-12 * (1.0 + abs(mean)):
            std = 1.0
        return cls(mean=mean, std=std)

    def __call__(self, y) -> torch.Tensor:
        t = _as_vec(y, "y")
        return (t - self.mean) / self.std

    def inverse(self, z) -> torch.Tensor:
        t = _as_vec(z, "z")
        return t * self.std + self.mean


def _as_vec(y, name: str) -> torch.Tensor:
    t = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y, dtype=np.float64))
    t = t.to(torch.float64)
    if t.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of labels, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf; labels must be finite")
    return t


def _monomials(Z: torch.Tensor, degree: int) -> list[torch.Tensor]:
    """All monomials of total degree 1..degree in the columns of Z (n, d), as (n,) columns."""
    d = Z.shape[1]
    cols: list[torch.Tensor] = []
    frontier = [(j, Z[:, j]) for j in range(d)]  # (last index used, monomial)
    for _ in range(degree):
        cols.extend(m for _, m in frontier)
        # multiply by coordinates with index >= last so each monomial appears once
        frontier = [(k, m * Z[:, k]) for j, m in frontier for k in range(j, d)]
    return cols


def additive_fit_residual(X, y, *, degree: int = 3) -> float:
    """Share of the variance of y left by the best additive fit.

    The additive class is approximated by sums  c + sum_l g_l(X_l)  with each g_l a polynomial of total
    degree <= ``degree`` in the d coordinates of X_l (all monomials, cross-coordinate ones included, but
    never a product of two different steps). Returns ||y - y_fit||^2 / ||y - mean(y)||^2 from a float64
    least-squares fit: about 0 for additive polynomial targets of degree <= ``degree`` (sum_l f(beta_l^T X_l)
    with f in {z, z^2, z^3}), and clearly positive for targets with cross-step terms such as an
    N-variable z^2 target. Needs n well above the number of features, L * (C(d + degree, degree) - 1) + 1,
    or the fit interpolates and the residual is meaningless (a ValueError says so).
    Constant y returns 0.0 (a constant is additive).
    """
    X = as_sequences(X, "X")
    yv = _as_vec(y, "y").to(X.device)
    n, L, d = X.shape
    if yv.shape[0] != n:
        raise ValueError(f"y has {yv.shape[0]} labels but X holds n = {n} sequences")
    degree = check_positive_int(degree, "degree")
    cols = [torch.ones(n, dtype=torch.float64, device=X.device)]
    for l in range(L):
        cols.extend(_monomials(X[:, l, :], degree))
    Phi = torch.stack(cols, dim=1)
    if n < 2 * Phi.shape[1]:
        raise ValueError(
            f"additive_fit_residual needs n >= 2 * (number of features) = {2 * Phi.shape[1]} for L = {L}, "
            f"d = {d}, degree = {degree}; got n = {n}"
        )
    centred = yv - yv.mean()
    total = float(centred @ centred)
    if total <= 0.0:
        return 0.0
    # Column scaling keeps the least-squares problem well conditioned when steps have very different norms.
    # The features are rank deficient by construction whenever step norms are fixed (sum_j X_{l,j}^2 = 1 is
    # the constant column in the unit regime), so a rank-revealing solver is required: SVD (gelss; torch's
    # gelsy returned a wrong fit on rank-deficient tall systems in testing).
    scale = Phi.norm(dim=0).clamp_min(1e-300)
    Phi = (Phi / scale).cpu()
    coef = torch.linalg.lstsq(Phi, yv.cpu().unsqueeze(1), driver="gelss").solution
    resid = yv.cpu() - Phi @ coef.squeeze(1)
    return float(resid @ resid) / total
