"""Toy claims for the engine's own tests, in their own registry (the catalogue stays untouched).

Use them with ``registry=TOY`` in Python, or ``RNNCLAIMS_REGISTRY=tests.toy_claims:TOY`` for the CLI
and ``pytest claims``. Recipes are plain dicts ``{"x": int, "seed": int}`` except for TOY-OBJ, whose
recipes are :class:`ToyRecipe` objects with ``to_dict`` / ``from_dict``.

- TOY-HOLDS: always passes (its control cell always fails);
- TOY-FAILS: fails whenever x >= 10 (x drawn from 0..1000), so shrinking must reach x == 10;
- TOY-RAISES: evaluation raises;
- TOY-MEMORY: claims to need 2^60 bytes, so the memory guard skips it;
- TOY-OBJ: object recipes, fails when x > 50 (used to test reproduce);
- TOY-SLOW: sleeps RNNCLAIMS_TOY_SLEEP seconds (default 0.2) per example, always passes.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

from hypothesis import strategies as st

from claims.base import Claim, Outcome
from claims.registry import Registry

TOY = Registry("tests.toy_claims:TOY")


def _grid(profile) -> list[dict]:
    return [{"m": m, "L": L} for m in profile.widths for L in profile.lengths]


def _dicts(low: int = 0, high: int = 100):
    return st.fixed_dictionaries({"x": st.integers(low, high), "seed": st.integers(0, 2**16)})


def _meta(cid: str, **kw) -> dict:
    base = dict(
        id=cid, title=f"toy {cid.lower()}", operationalizes="nothing (engine test)",
        statement="a toy statement", pass_rule="toy rule", negative_control="toy control",
        expected="toy", axes=("m", "L"), declared={"c": 1.0},
    )
    base.update(kw)
    return base


def _holds_eval(cell, recipe, ctx):
    ok = not cell.get("control", False)
    x = recipe["x"]
    return Outcome(ok=ok, margin=x / 200 if ok else 2.0, measured={"x": x, "tag": "t", "flag": x > 50},
                   series=[{"i": 0, "value": x}, {"i": 1, "value": 2 * x}], constants={"c": x / 100})


TOY.register(Claim(**_meta("TOY-HOLDS"), cells=lambda p: _grid(p) + [{"m": p.widths[0], "L": 2, "control": True}],
                   strategy=lambda cell, p: _dicts(), evaluate=_holds_eval,
                   must_hold=lambda cell, p: cell["m"] == p.widths[-1]))


def _fails_eval(cell, recipe, ctx):
    x = recipe["x"]
    return Outcome(ok=x < 10, margin=x / 10, measured={"x": x}, constants={"c": x})


TOY.register(Claim(**_meta("TOY-FAILS"), cells=lambda p: [{"m": p.widths[0], "L": p.lengths[0]}],
                   strategy=lambda cell, p: _dicts(0, 1000), evaluate=_fails_eval))


def _raises_eval(cell, recipe, ctx):
    raise RuntimeError(f"toy failure at x={recipe['x']}")


TOY.register(Claim(**_meta("TOY-RAISES"), cells=lambda p: [{"m": 1, "L": 2}],
                   strategy=lambda cell, p: _dicts(), evaluate=_raises_eval))

TOY.register(Claim(**_meta("TOY-MEMORY"), cells=lambda p: [{"m": 10**9, "L": 2}],
                   strategy=lambda cell, p: _dicts(), evaluate=_holds_eval,
                   memory_bytes=lambda cell, p: 2**60))


@dataclass(frozen=True)
class ToyRecipe:
    x: int
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ToyRecipe":
        return cls(**data)


def _obj_eval(cell, recipe, ctx):
    if not isinstance(recipe, ToyRecipe):
        raise TypeError(f"expected ToyRecipe, got {type(recipe).__name__}")
    return Outcome(ok=recipe.x <= 50, margin=recipe.x / 50, measured={"x": recipe.x})


TOY.register(Claim(**_meta("TOY-OBJ"), cells=lambda p: [{"m": 4, "L": 2}],
                   strategy=lambda cell, p: st.builds(ToyRecipe, x=st.integers(51, 100), seed=st.integers(0, 9)),
                   evaluate=_obj_eval, recipe_from_dict=ToyRecipe.from_dict))


def _slow_eval(cell, recipe, ctx):
    time.sleep(float(os.environ.get("RNNCLAIMS_TOY_SLEEP", "0.2")))
    return Outcome(ok=True, margin=0.5, measured={"x": recipe["x"]})


TOY.register(Claim(**_meta("TOY-SLOW"), cells=lambda p: [{"m": m, "L": L, "r": r} for m in p.widths
                                                          for L in p.lengths for r in range(3)],
                   strategy=lambda cell, p: _dicts(), evaluate=_slow_eval))
