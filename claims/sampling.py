"""Hypothesis as the engine's sampler: draw the recipes of a cell, shrink a failing one.

Drawing. A cell's recipes come from ``claim.strategy(cell, profile)`` by hypothesis's generate phase
with ``derandomize=True, database=None`` and an explicit seed, :func:`cell_seed`: a hash of the run
seed, the claim id and the cell key. The same (seed, claim, cell) always draws the same recipes, in the
same order; different cells draw different ones; ``--seed S`` gathers fresh, reproducible evidence.
Hypothesis tries the simplest example first (every seed 0, smallest sizes), the same in every cell; it
is dropped, so the examples are seeded draws. Draws use hypothesis's own provider minus the "local
constants" it harvests from every project module imported so far (:class:`_ProjectBlindProvider`):
otherwise the same seed drew other recipes in a worker process than in the controller, and other
recipes after any unrelated module gained a number.

Shrinking. The failing example is shrunk by replaying the same draw with hypothesis's shrink phase on;
recipes already evaluated are cached, so the replay costs nothing until hypothesis proposes new ones,
of which at most ``budget`` are evaluated (after that every unseen recipe counts as passing, and
hypothesis stops making progress). Among all failing recipes seen, the stored one is the simplest under
:func:`simplicity_key`: shortlex order on the recipe's canonical JSON text (sorted keys, no spaces):
shorter is simpler, and equal lengths compare character by character (so smaller seeds, sizes and
positions are simpler). ``shrunk`` is true only when that recipe is strictly simpler than the first
failing one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from claims.schema import cell_key, json_safe

__all__ = ["cell_seed", "draw_recipes", "recipe_json", "simplicity_key", "shrink"]


def cell_seed(claim_id: str, cell: dict, seed: int = 0) -> int:
    """The seed of a cell's draw: a hash of the run ``seed``, the claim id and the cell key (seed 0 is
    the default every CI run uses)."""
    text = f"{claim_id.upper()}|{cell_key(cell)}" + (f"|{seed}" if seed else "")
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


_BACKEND = "rnnclaims"


def _register_backend() -> str:
    """Register :class:`_ProjectBlindProvider` as the hypothesis backend ``rnnclaims`` (once)."""
    from hypothesis.internal.conjecture import providers

    if _BACKEND in providers.AVAILABLE_PROVIDERS:
        return _BACKEND

    class _ProjectBlindProvider(providers.HypothesisProvider):
        """Hypothesis's provider, drawing "interesting" constants only from hypothesis's global pool,
        never from the modules a process happens to have imported (which differ between processes)."""

        _pools: dict = {}

        def _maybe_draw_constant(self, choice_type, constraints, *, p: float = 0.05):
            if self._random.random() > p:
                return None
            key = (choice_type, providers.choice_constraints_key(choice_type, constraints))
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = tuple(
                    c for c in providers.GLOBAL_CONSTANTS.set_for_type(choice_type)
                    if providers.choice_permitted(c, constraints))
            return self._random.choice(pool) if pool else None

    providers.AVAILABLE_PROVIDERS[_BACKEND] = _ProjectBlindProvider
    return _BACKEND


def _settings(max_examples: int, phases: list) -> Any:
    from hypothesis import HealthCheck, Verbosity, settings

    return settings(
        backend=_register_backend(),
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
        report_multiple_bugs=False,
    )


def draw_recipes(strategy: Any, count: int, seed: int) -> list[Any]:
    """Up to ``count`` recipes from ``strategy``, reproducibly for a given ``seed`` (fewer when the
    strategy's space is exhausted)."""
    from hypothesis import Phase, given
    from hypothesis import seed as hyp_seed

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    drawn: list[Any] = []

    @hyp_seed(seed)
    @_settings(count + 1, [Phase.generate])
    @given(strategy)
    def _collect(recipe: Any) -> None:
        drawn.append(recipe)

    _collect()
    return drawn[1 : count + 1] if len(drawn) > count else drawn


def recipe_json(recipe: Any) -> str:
    """The canonical JSON text of a recipe (its ``to_dict()``, or the dict itself)."""
    data = recipe.to_dict() if hasattr(recipe, "to_dict") else recipe
    if not isinstance(data, dict):
        raise TypeError(f"a recipe must have a to_dict() method or be a dict, got {type(recipe).__name__}")
    return json.dumps(json_safe(data), sort_keys=True, separators=(",", ":"))


def simplicity_key(recipe: Any) -> tuple[int, str]:
    """Shortlex key of a recipe: (length, text) of its canonical JSON; smaller is simpler."""
    text = recipe_json(recipe)
    return len(text), text


class _ExampleFails(Exception):
    """Raised inside the shrink probe to tell hypothesis that a recipe fails the pass rule."""


def shrink(strategy: Any, seed: int, count: int, budget: int,
           fails: Callable[[Any], bool | None]) -> tuple[list[Any], int]:
    """Replay the draw of :func:`draw_recipes` with shrinking; ``fails(recipe)`` evaluates (or looks up)
    one recipe and returns True when it fails the pass rule, or None when the evaluation budget is spent
    (counted as passing). Returns (every failing recipe hypothesis reached, evaluations asked for)."""
    from hypothesis import Phase, given
    from hypothesis import seed as hyp_seed

    failing: list[Any] = []
    calls = {"n": 0}

    @hyp_seed(seed)
    @_settings(count + 1, [Phase.generate, Phase.shrink])
    @given(strategy)
    def _probe(recipe: Any) -> None:
        calls["n"] += 1
        if fails(recipe):
            failing.append(recipe)
            raise _ExampleFails()

    try:
        _probe()
    except _ExampleFails:
        pass
    except Exception:  # e.g. hypothesis's Flaky when a replay disagrees: keep what was reached
        pass
    return failing, calls["n"]
