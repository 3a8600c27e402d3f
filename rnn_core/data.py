"""Inputs, separation and serializable data recipes (SPEC section 3).

Input regimes (the regime fixes the NORM of every step exactly; the direction family fixes the law of
the step's DIRECTION):

* ``normalized``: X_1 = e_d (the last standard basis vector, as in the SPEC) and ||X_l|| = eps = 0.05
  exactly for l >= 2 (the earlier works' condition ||X_l|| <= eps, taken at its boundary so that the
  regime's norms are deterministic and testable).
* ``unit``: ||X_l|| = 1 for every l.
* ``unnormalized``: ||X_l|| = exp(U), U uniform on [log 0.25, log 4], independently per step
  (log-uniform in [0.25, 4]).

Direction families:

* ``sphere``: uniform on the unit sphere S^{d-1}.
* ``gaussian``: the direction of an ANISOTROPIC Gaussian, u = z / ||z|| with z ~ N(0, diag(1, 1/2, ...,
  1/d)). (An isotropic Gaussian's direction is uniform on the sphere, i.e. the same law as ``sphere``;
  the decaying spectrum makes this family genuinely different: directions cluster around the first
  axes, which lowers the separation of a dataset. For d = 1 it coincides with ``sphere``.)
* ``tokens``: a vocabulary of ``vocab`` fixed unit embeddings in R^d, drawn once from
  ``default_rng([vocab_seed, vocab, d])`` (independent of the data seed, so the train and test splits
  share the vocabulary); each step picks a token uniformly at random, duplicates possible.

Separation (SPEC): with x_hat the flattened sequence scaled to unit norm,
delta(x, x') = min(||x_hat - x_hat'||, ||x_hat + x_hat'||) = sqrt(2 - 2 |<x_hat, x_hat'>|).
Everything is computed from row blocks of the Gram matrix, never from (n, n, L d) differences.

All draws use ``numpy.random.default_rng`` (stable streams across versions) and return float64 CPU
tensors; claims move them to their device.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnn_core._checks import as_sequences, check_positive_int
from rnn_core.targets import TargetSpec, make_target

__all__ = [
    "REGIMES",
    "DIRECTIONS",
    "EPS_NORMALIZED",
    "UNNORMALIZED_RANGE",
    "MAX_SEPARATION",
    "first_informative_position",
    "TargetSpec",
    "Recipe",
    "make_inputs",
    "token_vocabulary",
    "separation",
    "pairwise_separation",
    "make_dataset",
    "test_seed",
]

REGIMES = ("normalized", "unit", "unnormalized")
DIRECTIONS = ("sphere", "gaussian", "tokens")
EPS_NORMALIZED = 0.05
UNNORMALIZED_RANGE = (0.25, 4.0)
#: delta(x, x') <= sqrt(2) always (|<x_hat, x_hat'>| >= 0), so a floor must lie below it
MAX_SEPARATION = math.sqrt(2.0)
_MAX_REDRAW_ROUNDS = 200
# Row-block size for Gram computations: block * n float64 entries stay near 2^24 (128 MiB).
_GRAM_BUDGET = 1 << 24


def _floor(value: Any, name: str = "separation_floor") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a real number in [0, sqrt(2)), got {value!r}")
    if not 0.0 <= value < MAX_SEPARATION:
        raise ValueError(f"{name} must lie in [0, sqrt(2)) = [0, {MAX_SEPARATION:.6f}), got {value}")
    return float(value)


def _check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------


def token_vocabulary(vocab: int, d: int, *, vocab_seed: int = 0) -> np.ndarray:
    """The (vocab, d) table of fixed unit token embeddings (float64)."""
    vocab = check_positive_int(vocab, "vocab", minimum=1)
    d = check_positive_int(d, "d", minimum=1)
    rng = np.random.default_rng([check_positive_int(vocab_seed, "vocab_seed", minimum=0), vocab, d])
    E = rng.standard_normal((vocab, d))
    return E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-300)


def _directions(rng: np.random.Generator, k: int, L: int, d: int, directions: str, vocab_table) -> np.ndarray:
    """(k, L, d) unit step directions of the given family."""
    if directions == "tokens":
        idx = rng.integers(0, vocab_table.shape[0], size=(k, L))
        return vocab_table[idx]
    z = rng.standard_normal((k, L, d))
    if directions == "gaussian":
        z = z * np.sqrt(1.0 / np.arange(1, d + 1))
    # a Gaussian vector is 0 with probability 0; the floor only guards 0/0
    return z / np.maximum(np.linalg.norm(z, axis=2, keepdims=True), 1e-300)


def _norms(rng: np.random.Generator, k: int, L: int, regime: str, eps: float) -> np.ndarray:
    """(k, L) step norms of the regime (X_1 of the normalized regime is handled by the caller)."""
    if regime == "unit":
        return np.ones((k, L))
    if regime == "normalized":
        return np.full((k, L), eps)
    lo, hi = UNNORMALIZED_RANGE
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size=(k, L)))


def first_informative_position(regime: str) -> int:
    """The first 1-based step whose input varies between sequences: 2 in the ``normalized`` regime (X_1 =
    e_d for every sequence, so a target on X_1 alone is constant), 1 otherwise."""
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)}, got {regime!r}")
    return 2 if regime == "normalized" else 1


def _draw(rng, k, L, d, regime, directions, vocab_table, eps) -> np.ndarray:
    X = _directions(rng, k, L, d, directions, vocab_table) * _norms(rng, k, L, regime, eps)[:, :, None]
    if regime == "normalized":
        X[:, 0, :] = 0.0
        X[:, 0, d - 1] = 1.0  # X_1 = e_d
    return X


def make_inputs(
    n: int,
    L: int,
    d: int,
    *,
    regime: str,
    directions: str = "sphere",
    seed: int = 0,
    separation_floor: float = 0.0,
    vocab: int = 8,
    vocab_seed: int = 0,
    eps: float = EPS_NORMALIZED,
) -> torch.Tensor:
    """Draw n input sequences, float64 tensor of shape (n, L, d) (see the module docstring for the laws).

    separation_floor > 0: sequences closer than the floor to an earlier one (delta < floor) are redrawn
    from the same stream, for at most 200 rounds; if that does not succeed (for instance tokens with a
    vocabulary too small to give n distinct sequences) a ValueError says so.
    """
    n = check_positive_int(n, "n", minimum=1)
    L = check_positive_int(L, "L", minimum=1)
    d = check_positive_int(d, "d", minimum=1)
    _check_choice(regime, "regime", REGIMES)
    _check_choice(directions, "directions", DIRECTIONS)
    seed = check_positive_int(seed, "seed", minimum=0)
    floor = _floor(separation_floor)
    vocab = check_positive_int(vocab, "vocab", minimum=1)
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0.0 < eps <= 1.0:
        raise ValueError(f"eps must be a real number in (0, 1], got {eps!r}")
    table = token_vocabulary(vocab, d, vocab_seed=vocab_seed) if directions == "tokens" else None
    rng = np.random.default_rng(seed)
    X = _draw(rng, n, L, d, regime, directions, table, float(eps))
    if floor > 0.0 and n > 1:
        _enforce_floor(X, floor, rng, lambda k: _draw(rng, k, L, d, regime, directions, table, float(eps)))
    return torch.from_numpy(X)


def _unit_flat(X: np.ndarray) -> np.ndarray:
    F = X.reshape(X.shape[0], -1)
    norms = np.linalg.norm(F, axis=1, keepdims=True)
    return F / np.where(norms > 0, norms, 1.0)


def _enforce_floor(X: np.ndarray, floor: float, rng, redraw) -> None:
    """Redraw (in place) sequences whose separation from an earlier / kept one is below ``floor``.

    delta < floor  <=>  |<x_hat, x_hat'>| > 1 - floor^2 / 2.
    Round 1 checks every pair i < j and redraws j; later rounds check only the redrawn rows against all
    others (a redrawn row r conflicts with c when c was kept or c < r), so each round costs O(|R| n).
    """
    n = X.shape[0]
    thresh = 1.0 - floor * floor / 2.0
    U = _unit_flat(X)
    rows = np.arange(n)
    redrawn = np.zeros(n, dtype=bool)
    for round_ in range(_MAX_REDRAW_ROUNDS + 1):
        bad = np.zeros(n, dtype=bool)
        block = max(1, _GRAM_BUDGET // max(n, 1))
        for s in range(0, rows.size, block):
            r = rows[s : s + block]
            G = np.abs(U[r] @ U.T)
            close = G > thresh
            close[np.arange(r.size), r] = False  # a sequence is not compared with itself
            if round_ == 0:
                close &= np.arange(n)[None, :] < r[:, None]  # pair (i, j), i < j: redraw j
            else:
                close &= (~redrawn)[None, :] | (np.arange(n)[None, :] < r[:, None])
            bad[r] = close.any(axis=1)
        rows = np.flatnonzero(bad)
        if rows.size == 0:
            return
        if round_ == _MAX_REDRAW_ROUNDS:
            break
        X[rows] = redraw(rows.size)
        U[rows] = _unit_flat(X[rows])
        redrawn = bad
    raise ValueError(
        f"separation_floor = {floor} could not be met for n = {n} sequences after {_MAX_REDRAW_ROUNDS} redraw "
        f"rounds ({rows.size} sequences still too close); lower the floor or n, or (tokens) raise vocab or L"
    )


# ---------------------------------------------------------------------------------------------------
# separation
# ---------------------------------------------------------------------------------------------------


def _delta_exact(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.minimum((a - b).norm(), (a + b).norm()))


def separation(X) -> float:
    """min_{i<j} delta(x_i, x_j); +inf for n = 1; 0 when some sequence is identically zero.

    The minimum is located from row blocks of the Gram matrix (sqrt(2 - 2|<a, b>|) loses about half of
    float64's digits near parallel pairs), then recomputed directly as min(||a - b||, ||a + b||) for the
    minimizing pair, so a parallel pair gives 0 to rounding (~1e-16) rather than ~1e-8.
    """
    X = as_sequences(X, "X")
    n = X.shape[0]
    if n == 1:
        return math.inf
    F = X.reshape(n, -1)
    norms = F.norm(dim=1)
    if bool((norms == 0).any()):
        return 0.0  # x_hat is undefined; a zero sequence makes the NTK singular, like a parallel pair
    U = F / norms[:, None]
    best, bi, bj = -1.0, 0, 1
    block = max(1, _GRAM_BUDGET // n)
    for s in range(0, n - 1, block):
        e = min(n - 1, s + block)
        # rows s..e-1 against columns > row (strict upper triangle)
        G = (U[s:e] @ U.T).abs()
        mask = torch.arange(n, device=U.device)[None, :] <= torch.arange(s, e, device=U.device)[:, None]
        G[mask] = -1.0
        val, flat = G.reshape(-1).max(dim=0)
        if float(val) > best:
            best = float(val)
            bi, bj = s + int(flat) // n, int(flat) % n
    return _delta_exact(U[bi], U[bj])


def pairwise_separation(X, X2=None) -> torch.Tensor:
    """(n, n2) float64 matrix of delta(x_i, x'_j) = sqrt(max(0, 2 - 2 |<x_hat_i, x_hat'_j>|)).

    Accurate to about 1e-8 near parallel pairs (see :func:`separation`); zero sequences give NaN rows.
    Forms an n x n2 matrix: meant for small batches and diagnostics.
    """
    X = as_sequences(X, "X")
    Y = X if X2 is None else as_sequences(X2, "X2", d=X.shape[2])
    if Y.shape[1] != X.shape[1]:
        raise ValueError(f"X and X2 must share the length L; got {X.shape[1]} and {Y.shape[1]}")
    A = X.reshape(X.shape[0], -1)
    B = Y.reshape(Y.shape[0], -1)
    A = A / A.norm(dim=1, keepdim=True)
    B = B / B.norm(dim=1, keepdim=True)
    D = torch.sqrt((2.0 - 2.0 * (A @ B.T).abs()).clamp_min(0.0))
    if X2 is None:
        D.fill_diagonal_(0.0)
    return D


# ---------------------------------------------------------------------------------------------------
# recipes
# ---------------------------------------------------------------------------------------------------

_RECIPE_KEYS = ("n", "L", "d", "regime", "directions", "target", "separation_floor", "data_seed", "init_seed", "vocab")


@dataclass(frozen=True)
class Recipe:
    """Everything needed to rebuild one example's data (SPEC section 3), JSON-serializable.

    n >= 1 training sequences of length L >= 1 in R^d (d >= 1); regime in REGIMES; directions in
    DIRECTIONS; target a TargetSpec that fits L; separation_floor in [0, sqrt 2); data_seed and
    init_seed integers >= 0 (init_seed is for the network, used by the claims); vocab >= 1 tokens.
    """

    n: int
    L: int
    d: int
    regime: str = "unit"
    directions: str = "sphere"
    target: TargetSpec = TargetSpec()
    separation_floor: float = 0.0
    data_seed: int = 0
    init_seed: int = 0
    vocab: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_positive_int(self.n, "Recipe.n", minimum=1))
        object.__setattr__(self, "L", check_positive_int(self.L, "Recipe.L", minimum=1))
        object.__setattr__(self, "d", check_positive_int(self.d, "Recipe.d", minimum=1))
        _check_choice(self.regime, "Recipe.regime", REGIMES)
        _check_choice(self.directions, "Recipe.directions", DIRECTIONS)
        target = self.target
        if isinstance(target, dict):
            target = TargetSpec.from_dict(target)
        if not isinstance(target, TargetSpec):
            raise ValueError(f"Recipe.target must be a TargetSpec (or its dict), got {type(target).__name__}")
        target.check_length(self.L)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "separation_floor", _floor(self.separation_floor, "Recipe.separation_floor"))
        object.__setattr__(self, "data_seed", check_positive_int(self.data_seed, "Recipe.data_seed", minimum=0))
        object.__setattr__(self, "init_seed", check_positive_int(self.init_seed, "Recipe.init_seed", minimum=0))
        object.__setattr__(self, "vocab", check_positive_int(self.vocab, "Recipe.vocab", minimum=1))

    def replace(self, **changes) -> "Recipe":
        d = self.to_dict()
        for k, v in changes.items():
            if k not in _RECIPE_KEYS:
                raise ValueError(f"Recipe has no field {k!r}; fields are {_RECIPE_KEYS}")
            d[k] = v.to_dict() if isinstance(v, TargetSpec) else v
        return Recipe.from_dict(d)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "L": self.L,
            "d": self.d,
            "regime": self.regime,
            "directions": self.directions,
            "target": self.target.to_dict(),
            "separation_floor": self.separation_floor,
            "data_seed": self.data_seed,
            "init_seed": self.init_seed,
            "vocab": self.vocab,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        if not isinstance(d, dict):
            raise ValueError(f"Recipe.from_dict expects a dict, got {type(d).__name__}")
        unknown = set(d) - set(_RECIPE_KEYS)
        if unknown:
            raise ValueError(f"Recipe.from_dict: unknown keys {sorted(unknown)}; allowed {list(_RECIPE_KEYS)}")
        d = dict(d)
        if isinstance(d.get("target"), dict):
            d["target"] = TargetSpec.from_dict(d["target"])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, s: str) -> "Recipe":
        try:
            d = json.loads(s)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"Recipe.from_json: not valid JSON: {exc}") from None
        return cls.from_dict(d)


def test_seed(data_seed: int) -> int:
    """Seed of the test split: ``SeedSequence([data_seed, 0x7E57]).generate_state(1)[0]``.

    A hashed derivation (not data_seed + 1) so that the test draw of one recipe never coincides with the
    training draw of a recipe with a neighbouring seed.
    """
    return int(np.random.SeedSequence([check_positive_int(data_seed, "data_seed", minimum=0), 0x7E57]).generate_state(1)[0])


test_seed.__test__ = False  # not a pytest test despite the name


def make_dataset(recipe: Recipe, split: str = "train", n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, y_raw) for a recipe: float64 (n, L, d) inputs and (n,) raw (unstandardized) labels.

    split "train": n = recipe.n sequences (unless ``n`` overrides it) from seed data_seed, honouring the
    separation floor. split "test": an independent draw from seed ``test_seed(data_seed)`` and the SAME
    target function (same beta, f, positions). The floor is NOT applied to the test split: it is a
    condition on the training set (positive definiteness of its NTK), while the generalization claims
    measure the loss under the base input law; it also keeps large test sets of short token sequences
    feasible.
    """
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    _check_choice(split, "split", ("train", "test"))
    count = recipe.n if n is None else check_positive_int(n, "n", minimum=1)
    if split == "train":
        seed, floor = recipe.data_seed, recipe.separation_floor
    else:
        seed, floor = test_seed(recipe.data_seed), 0.0
    X = make_inputs(
        count,
        recipe.L,
        recipe.d,
        regime=recipe.regime,
        directions=recipe.directions,
        seed=seed,
        separation_floor=floor,
        vocab=recipe.vocab,
    )
    y = make_target(recipe.target, recipe.L, recipe.d)(X)
    return X, y
