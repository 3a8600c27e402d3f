"""Hypothesis strategies for data recipes (rnn_core.data.Recipe) and targets (TargetSpec).

Every parameter is keyword-only and accepts three kinds of value:

* a plain value pins the field (``regime="unit"``);
* ``None`` lets hypothesis draw it from a small default set;
* a hypothesis ``SearchStrategy`` is drawn from (``d=st.integers(3, 4)``).

Defaults are ordered so that failures shrink toward simple cases: d = 2, directions "sphere", seeds 0,
target f "z2", additive positions (1,), nvar N = 2 with the smallest span and lag 0.

Feasibility. A separation floor can be impossible to meet: tokens from a small vocabulary give few
distinct sequences, and in the ``normalized`` regime every sequence shares X_1 = e_d, so only the
eps-scaled tail separates them. When separation_floor > 0 (and n <= 4096), :func:`recipes` builds the
training inputs once and, if the floor cannot be met, raises a free d (up to 16) and a free vocabulary
(up to 64) until it can; with everything pinned it raises a ValueError naming the parameters.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from rnn_core.data import DIRECTIONS, REGIMES, Recipe, make_inputs
from rnn_core.targets import FAMILIES, F_NAMES, TargetSpec

__all__ = ["recipes", "target_specs", "SEEDS", "D_RANGE"]

#: seeds are drawn from this strategy (shrinks to 0)
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
#: default range of the input dimension d
D_RANGE = (2, 6)
#: default concept families drawn when the target is free (random labels are a control: ask for them)
CONCEPT_FAMILIES = ("additive", "nvar")
_F_ORDER = ("z2", "z", "z3", "sin", "cos")  # shrinks toward z^2, the SPEC's running example
_FEASIBILITY_MAX_N = 4096
_MAX_D = 16
_MAX_VOCAB = 64


def _pick(draw, value, default: SearchStrategy):
    if isinstance(value, SearchStrategy):
        return draw(value)
    if value is None:
        return draw(default)
    return value


@st.composite
def target_specs(
    draw,
    *,
    L: Any,
    family: Any = None,
    f: Any = None,
    positions: Any = None,
    N: Any = None,
    span: Any = None,
    lag: Any = None,
    seed: Any = None,
    max_positions: int = 3,
    max_N: int = 4,
) -> TargetSpec:
    """TargetSpec valid for sequences of length L.

    family: None draws from ("additive", "nvar"); a string pins it; a tuple/list draws among them.
    f: None draws from z2, z, z3, sin, cos (not used for "random").
    positions (additive): None draws 1..max_positions distinct positions in 1..L (shrinks to (1,)).
    N, span, lag (nvar): None draws N in 1..min(max_N, L), span in N-1..L-1, lag in 0..L-1-span
    (shrinks to N = 1 only if N is allowed to be 1: the default N range starts at 2 when L >= 2).
    seed: None draws from 0..2^31-1.
    """
    L = _pick(draw, L, st.integers(2, 8))
    if isinstance(family, (tuple, list)):
        bad = [x for x in family if x not in FAMILIES]
        if bad or not family:
            raise ValueError(f"family must be drawn from {FAMILIES}, got {family!r}")
        family = st.sampled_from(tuple(family))
    fam = _pick(draw, family, st.sampled_from(CONCEPT_FAMILIES))
    if fam not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {fam!r}")
    sd = _pick(draw, seed, SEEDS)
    if fam == "random":
        return TargetSpec(family="random", seed=sd)
    fn = _pick(draw, f, st.sampled_from(_F_ORDER))
    if fn not in F_NAMES:
        raise ValueError(f"f must be one of {F_NAMES}, got {fn!r}")
    if fam == "additive":
        pos = _pick(
            draw,
            positions,
            st.lists(st.integers(1, L), min_size=1, max_size=max(1, min(L, max_positions)), unique=True),
        )
        spec = TargetSpec(family="additive", f=fn, positions=tuple(sorted(pos)), seed=sd)
    else:
        n_lo = 2 if L >= 2 else 1
        nv = _pick(draw, N, st.integers(n_lo, max(n_lo, min(max_N, L))))
        sp = _pick(draw, span, st.integers(max(nv - 1, 0), max(nv - 1, L - 1)))
        lg = _pick(draw, lag, st.integers(0, max(0, L - 1 - sp)))
        spec = TargetSpec(family="nvar", f=fn, N=nv, span=sp, lag=lg, seed=sd)
    spec.check_length(L)
    return spec


def _target(draw, target, L) -> TargetSpec:
    if isinstance(target, TargetSpec):
        spec = target
    elif isinstance(target, dict):
        spec = TargetSpec.from_dict(target)
    elif isinstance(target, SearchStrategy):
        spec = draw(target)
    elif target is None or isinstance(target, (str, tuple, list)):
        spec = draw(target_specs(L=L, family=target))
    else:
        raise ValueError(
            "target must be None, a family name or tuple of names, a TargetSpec, its dict, or a strategy; "
            f"got {type(target).__name__}"
        )
    if not isinstance(spec, TargetSpec):
        raise ValueError(f"the target strategy must produce TargetSpec, got {type(spec).__name__}")
    spec.check_length(L)
    return spec


def _feasible(r: Recipe) -> bool:
    try:
        make_inputs(
            r.n,
            r.L,
            r.d,
            regime=r.regime,
            directions=r.directions,
            seed=r.data_seed,
            separation_floor=r.separation_floor,
            vocab=r.vocab,
        )
    except ValueError:
        return False
    return True


@st.composite
def recipes(
    draw,
    *,
    n: Any,
    L: Any,
    d: Any = None,
    regime: Any,
    directions: Any = None,
    target: Any = None,
    separation_floor: Any = 0.0,
    data_seed: Any = None,
    init_seed: Any = None,
    vocab: Any = None,
) -> Recipe:
    """A Recipe (SPEC section 3) with the pinned fields fixed and the free ones drawn.

    n, L, regime: required keywords (None draws n in 2..16, L in 2..8, regime from REGIMES).
    d: None draws 2..6. directions: None draws sphere / gaussian / tokens (shrinks to sphere).
    target: None draws an additive or nvar concept for this L; a family name (or tuple of names), a
    TargetSpec, its dict or a strategy otherwise. vocab: None draws 4..32 (used by tokens).
    separation_floor: a number in [0, sqrt 2) (default 0). Seeds: None draws 0..2^31-1.
    See the module docstring for how infeasible separation floors are handled.
    """
    n_v = _pick(draw, n, st.integers(2, 16))
    L_v = _pick(draw, L, st.integers(2, 8))
    reg = _pick(draw, regime, st.sampled_from(REGIMES))
    if reg not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, got {reg!r}")
    d_free = d is None or isinstance(d, SearchStrategy)
    d_v = _pick(draw, d, st.integers(*D_RANGE))
    dirs = _pick(draw, directions, st.sampled_from(DIRECTIONS))
    if dirs not in DIRECTIONS:
        raise ValueError(f"directions must be one of {DIRECTIONS}, got {dirs!r}")
    vocab_free = vocab is None or isinstance(vocab, SearchStrategy)
    voc = _pick(draw, vocab, st.integers(4, 32))
    spec = _target(draw, target, L_v)
    floor = _pick(draw, separation_floor, st.just(0.0))
    r = Recipe(
        n=n_v,
        L=L_v,
        d=d_v,
        regime=reg,
        directions=dirs,
        target=spec,
        separation_floor=floor,
        data_seed=_pick(draw, data_seed, SEEDS),
        init_seed=_pick(draw, init_seed, SEEDS),
        vocab=voc,
    )
    if r.separation_floor > 0 and r.n > 1 and r.n <= _FEASIBILITY_MAX_N and not _feasible(r):
        # Raise the free capacity knobs until the floor can be met (deterministic, so shrinking is stable).
        candidate = r
        while True:
            grow_vocab = vocab_free and dirs == "tokens" and candidate.vocab < _MAX_VOCAB
            grow_d = d_free and candidate.d < _MAX_D
            if not (grow_vocab or grow_d):
                raise ValueError(
                    f"separation_floor = {r.separation_floor} cannot be met for n = {r.n}, L = {r.L}, "
                    f"regime = {r.regime!r}, directions = {r.directions!r} with d = {candidate.d} and "
                    f"vocab = {candidate.vocab} (free d goes up to {_MAX_D}, free vocab up to {_MAX_VOCAB}); "
                    "lower the floor or n, or leave d / vocab free"
                )
            candidate = candidate.replace(
                d=candidate.d + 1 if grow_d else candidate.d,
                vocab=min(_MAX_VOCAB, 2 * candidate.vocab) if grow_vocab else candidate.vocab,
            )
            if _feasible(candidate):
                return candidate
    return r
