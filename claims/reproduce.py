"""Re-run one example from its recipe (or from a stored record), behind the same guards as a run.

Before anything is allocated:

- the cell must have exactly the parameters of the claim's cells (missing and unknown ones are named),
  and every text or flag parameter must take a value the claim uses in some profile (``regime`` must
  be a regime, ...);
- the recipe is rebuilt by the claim (``Recipe.from_dict`` validates it and names a bad field);
- the memory the example needs, the larger of ``claim.memory_bytes(cell, profile)`` and a generic
  estimate from the recipe's n, L, d and the cell's m, must fit in the device's available memory.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from claims.base import Context, Outcome
from claims.cell import network_dtype
from claims.environment import MEMORY_FRACTION, available_memory, resolve_device
from claims.profiles import PROFILES, Profile, get_profile
from claims.registry import Registry, recipe_from_dict, recipe_to_dict, resolve_registry
from claims.schema import json_safe
from claims.store import read_json

__all__ = ["reproduce", "check_cell", "recipe_memory"]


def _load_json_arg(value: Any, what: str) -> Any:
    if not isinstance(value, (str, os.PathLike)):
        return value
    text = os.fspath(value)
    if os.path.isfile(text):
        try:
            return read_json(text)
        except ValueError as exc:
            raise ValueError(f"{what}: file {text!r} is not valid JSON: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} must be an existing JSON file or a JSON object, got {text[:80]!r}") from exc


def check_cell(claim: Any, cell: dict) -> None:
    """Raise ``ValueError`` naming the parameter when ``cell`` is not shaped like the claim's cells."""
    shapes: dict[frozenset, list[dict]] = {}
    values: dict[str, set] = {}
    for profile in PROFILES.values():
        try:
            cells = claim.cells(profile)
        except Exception:
            continue
        for c in cells:
            shapes.setdefault(frozenset(c), []).append(c)
            for k, v in c.items():
                values.setdefault(k, set()).add(json.dumps(v, sort_keys=True))
    if not shapes:
        return
    keys = frozenset(cell)
    if keys not in shapes:
        best = min(shapes, key=lambda s: len(s ^ keys))
        missing = sorted(best - keys)
        unknown = sorted(keys - best)
        parts = []
        if missing:
            parts.append(f"missing parameter(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown parameter(s) {', '.join(unknown)}")
        raise ValueError(f"cell for {claim.id}: {'; '.join(parts)} (its cells have {', '.join(sorted(best))})")
    for k, v in cell.items():
        seen = values.get(k, set())
        samples = [json.loads(x) for x in seen]
        if any(isinstance(x, (str, bool)) for x in samples) or isinstance(v, (str, bool)):
            if json.dumps(v, sort_keys=True) not in seen:
                allowed = ", ".join(sorted(seen))
                raise ValueError(f"cell for {claim.id}: {k} must be one of {allowed}, got {v!r}")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            if v <= 0 and all(isinstance(x, (int, float)) and x > 0 for x in samples):
                raise ValueError(f"cell for {claim.id}: {k} must be > 0, got {v!r}")


def recipe_memory(recipe_dict: dict, cell: dict) -> int:
    """Bytes a network example of this size needs at least (float64): the inputs, W, the hidden states
    and deltas (6 n (L+1) m) and the (nL)^2 Gram matrices. Zero when the recipe has no such sizes."""
    def size(name: str, default: int = 1) -> int:
        value = recipe_dict.get(name, cell.get(name, default))
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    n, L, d, m = size("n"), size("L"), size("d"), size("m", 1)
    if not any(k in recipe_dict or k in cell for k in ("n", "L", "d", "m")):
        return 0
    return 8 * (n * L * d + m * m + 6 * n * (L + 1) * m + 2 * (n * L) ** 2)


def reproduce(
    claim_id: str,
    recipe: str | os.PathLike | dict,
    cell: str | dict | None = None,
    *,
    profile: Profile | str | None = None,
    device: str = "auto",
    registry: str | Registry | None = None,
    dtype: str = "auto",
    echo: Callable[[str], None] = print,
) -> Outcome:
    """Re-run one example and print its outcome.

    recipe: a recipe (dict, JSON text or file) or a stored record (dict, JSON text or file); a record
    supplies the cell, the profile, the dtype and its failing recipe (else the recipe that raised, else
    its first recipe). A bare recipe needs ``cell``. profile defaults to the record's, else "smoke".
    Evaluation errors propagate (this is the place to see them)."""
    claim = resolve_registry(registry).get(claim_id)
    doc = _load_json_arg(recipe, "recipe")
    if not isinstance(doc, dict):
        raise ValueError(f"recipe must be a JSON object, got {type(doc).__name__}")
    cell_doc = _load_json_arg(cell, "cell") if cell is not None else None
    record_dtype = None
    if "claim" in doc and "cell_key" in doc:  # a stored record
        if str(doc["claim"]).upper() != claim.id:
            raise ValueError(f"the record is for claim {doc['claim']!r}, not {claim.id!r}")
        for name in ("failing_recipe", "error_recipe"):
            if doc.get(name):
                recipe_doc, which = doc[name], name
                break
        else:
            if not doc.get("recipes"):
                raise ValueError("the record holds no recipe to reproduce")
            recipe_doc, which = doc["recipes"][0], "recipes[0]"
        echo(f"using the record's {which} (run seed {doc.get('seed', 0)}, draw seed "
             f"{(doc.get('seeds') or {}).get('draw_seed')})")
        if cell_doc is None:
            cell_doc = doc.get("cell")
        if profile is None:
            profile = doc.get("profile")
        record_dtype = doc.get("dtype")
    else:
        recipe_doc = doc
    if not isinstance(cell_doc, dict):
        raise ValueError("cell is required with a bare recipe: pass --cell '{\"m\": 64, ...}' (a JSON object)")
    if not isinstance(recipe_doc, dict):
        raise ValueError(f"recipe must be a JSON object, got {type(recipe_doc).__name__}")
    check_cell(claim, cell_doc)
    prof = get_profile(profile or "smoke")
    dev = resolve_device(device)
    need = max(int(claim.memory_bytes(cell_doc, prof)), recipe_memory(recipe_doc, cell_doc))
    have = available_memory(dev)
    if have is not None and need > MEMORY_FRACTION * have:
        raise MemoryError(f"this example needs about {need / 2**30:.3g} GiB, {have / 2**30:.2f} GiB available on "
                          f"{dev}: the recipe's n, L, d or the cell's m is too large for this machine")
    search_cell = cell_doc.get("kind") == "search"
    if search_cell:  # a stored point of a counterexample search (claims.search), re-scored exactly
        from claims.search import SearchPoint

        rebuilt = SearchPoint.from_dict(recipe_doc)
    else:
        rebuilt = recipe_from_dict(claim, recipe_doc, cell_doc, prof)
    net = record_dtype if (dtype == "auto" and record_dtype in ("float32", "float64")) else network_dtype(claim, dtype)
    import torch

    ctx = Context(device=dev, profile=prof, dtype={"float64": torch.float64, "float32": torch.float32}[net])
    if search_cell:
        from claims.search import evaluate_point

        outcome = evaluate_point(claim, cell_doc, rebuilt, ctx)
    else:
        outcome = claim.evaluate(cell_doc, rebuilt, ctx)
    if not isinstance(outcome, Outcome):
        raise TypeError(f"evaluate must return claims.base.Outcome, got {type(outcome).__name__}")
    status = {True: "passes", False: "FAILS", None: "inconclusive"}[outcome.ok]
    echo(f"claim {claim.id}  cell {json.dumps(json_safe(cell_doc), sort_keys=True)}  "
         f"profile {prof.name}  device {dev}  dtype {net}")
    echo(f"recipe {json.dumps(json_safe(recipe_to_dict(rebuilt)), sort_keys=True)}")
    echo(f"example {status}: ok={outcome.ok} margin={outcome.margin:.6g}" + (f" ({outcome.reason})" if outcome.reason else ""))
    if outcome.measured:
        echo(f"measured {json.dumps(json_safe(outcome.measured), sort_keys=True)}")
    if outcome.constants:
        echo(f"constants {json.dumps(json_safe(outcome.constants), sort_keys=True)} "
             f"(declared {json.dumps(json_safe(claim.declared), sort_keys=True)})")
    return outcome
