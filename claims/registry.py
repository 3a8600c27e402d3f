"""The claim registry: which claims exist, in which order, and how to find one by id.

Order is registration order: a catalogue orders its own claims by registering them in that order, and
joined catalogues follow each other (the built-in one first, then the entry points, sorted by value).

Each built-in catalogue module (``claims/catalogue/<name>.py``) builds one :class:`claims.base.Claim` and
calls :func:`register`. Other packages bring their own :class:`Registry` and announce it through the
entry-point group ``rnn_claims.catalogues`` (value ``"package.module:NAME"``), or a user names it with
``--registry package.module:NAME`` (``RNNCLAIMS_REGISTRY`` in the environment). Several catalogues are
used at once: :func:`resolve_registry` joins them into one registry whose ``spec`` lets another
process (a pool or Dask worker) rebuild the same set.

Specs:

* ``None``: ``RNNCLAIMS_REGISTRY`` when set, else ``"default"``;
* ``"default"``: the built-in catalogue plus every installed ``rnn_claims.catalogues`` entry point;
* ``"claims.catalogue"``: the built-in catalogue alone;
* ``"package.module:NAME"``: the :class:`Registry` object ``NAME`` of that module;
* several of these joined by commas, e.g. ``"default,mypkg.claims:REGISTRY"``.

A claim id may appear in one catalogue only; a clash is an error naming both catalogues.
"""

from __future__ import annotations

import importlib
import os
import threading
from importlib import metadata
from typing import Any, Callable, Iterable

from claims.base import Claim

__all__ = [
    "DEFAULT_SPEC",
    "BUILTIN_SPEC",
    "ENTRY_POINT_GROUP",
    "entry_point_specs",
    "ENV_REGISTRY",
    "Registry",
    "register",
    "all_claims",
    "get_claim",
    "resolve_registry",
    "select_claims",
    "recipe_from_dict",
    "recipe_to_dict",
]

DEFAULT_SPEC = "default"
BUILTIN_SPEC = "claims.catalogue"
ENV_REGISTRY = "RNNCLAIMS_REGISTRY"
ENTRY_POINT_GROUP = "rnn_claims.catalogues"


class Registry:
    """An ordered set of claims with unique ids.

    spec: how another process re-imports this registry (``"module:NAME"``, or ``"claims.catalogue"``
    for the default one); see :func:`resolve_registry`.
    """

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._claims: dict[str, Claim] = {}
        self._lock = threading.Lock()

    def register(self, claim: Claim) -> Claim:
        """Add ``claim``; a second claim with the same id (any case) is a ``ValueError``."""
        if not isinstance(claim, Claim):
            raise TypeError(f"register() expects a claims.base.Claim, got {type(claim).__name__}")
        key = claim.id.upper()
        with self._lock:
            if key in self._claims:
                raise ValueError(
                    f"duplicate claim id {claim.id!r}: already registered "
                    f"(from {self._claims[key].evaluate.__module__})"
                )
            self._claims[key] = claim
        return claim

    def claims(self) -> list[Claim]:
        """All claims in registration order (the order the catalogue registered them in)."""
        return list(self._claims.values())

    def ids(self) -> list[str]:
        return [c.id for c in self.claims()]

    def get(self, claim_id: str) -> Claim:
        """The claim with this id (case-insensitive); unknown ids raise ``ValueError`` listing the known."""
        if not isinstance(claim_id, str) or not claim_id.strip():
            raise ValueError(f"claim id must be a non-empty string, got {claim_id!r}")
        claim = self._claims.get(claim_id.strip().upper())
        if claim is None:
            known = ", ".join(self.ids()) or "(none registered)"
            raise ValueError(f"unknown claim id {claim_id!r}; known ids: {known}")
        return claim

    def __contains__(self, claim_id: object) -> bool:
        return isinstance(claim_id, str) and claim_id.upper() in self._claims

    def __len__(self) -> int:
        return len(self._claims)

    def __repr__(self) -> str:
        return f"Registry({self.spec!r}, {len(self)} claims)"


REGISTRY = Registry(BUILTIN_SPEC)
_catalogue_loaded = False


def register(claim: Claim) -> Claim:
    """Register a catalogue claim in the default registry (called by each catalogue module)."""
    return REGISTRY.register(claim)


def _load_catalogue() -> None:
    global _catalogue_loaded
    if not _catalogue_loaded:
        importlib.import_module("claims.catalogue")
        _catalogue_loaded = True


def entry_point_specs() -> list[str]:
    """``"module:NAME"`` of every installed catalogue (entry-point group ``rnn_claims.catalogues``)."""
    return sorted({ep.value.strip() for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})


def _resolve_one(spec: str) -> Registry:
    if spec == BUILTIN_SPEC:
        _load_catalogue()
        return REGISTRY
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"registry spec must be {DEFAULT_SPEC!r}, {BUILTIN_SPEC!r} or 'package.module:NAME', got {spec!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"registry spec {spec!r}: cannot import {module_name!r}: {exc}") from exc
    registry = getattr(module, attr, None)
    if not isinstance(registry, Registry):
        raise ValueError(f"registry spec {spec!r}: {module_name}.{attr} is not a claims.registry.Registry")
    return registry


_JOINED: dict[str, Registry] = {}


def resolve_registry(spec: str | Registry | None = None) -> Registry:
    """The registry named by ``spec`` (see the module docstring); errors name the bad spec."""
    if isinstance(spec, Registry):
        if spec is REGISTRY:
            _load_catalogue()
        return spec
    if spec is None:
        spec = os.environ.get(ENV_REGISTRY, "").strip() or DEFAULT_SPEC
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"registry spec must be a non-empty string, got {spec!r}")
    parts: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        expanded = [BUILTIN_SPEC, *entry_point_specs()] if part == DEFAULT_SPEC else [part]
        parts.extend(x for x in expanded if x not in parts)
    if len(parts) == 1:
        return _resolve_one(parts[0])
    key = ",".join(parts)
    if key in _JOINED:
        return _JOINED[key]
    joined = Registry(spec if spec == DEFAULT_SPEC else key)
    owner: dict[str, str] = {}
    for part in parts:
        for claim in _resolve_one(part).claims():
            if claim.id in owner:
                raise ValueError(f"claim id {claim.id!r} is registered by both {owner[claim.id]!r} and {part!r}")
            owner[claim.id] = part
            joined.register(claim)
    _JOINED[key] = joined
    return joined


def all_claims(registry: str | Registry | None = None) -> list[Claim]:
    """All claims of the registry (default: the catalogue), in registration order."""
    return resolve_registry(registry).claims()


def get_claim(claim_id: str, registry: str | Registry | None = None) -> Claim:
    """One claim by id, case-insensitive; unknown ids raise ``ValueError`` listing the known ids."""
    return resolve_registry(registry).get(claim_id)


def select_claims(
    ids: str | Iterable[str | Claim] | None, registry: str | Registry | None = None
) -> list[Claim]:
    """Claims named by ``ids`` ("A,B", a list of ids or Claim objects, or None for all), deduplicated,
    in registration order. Unknown ids raise ``ValueError`` listing the known ids."""
    reg = resolve_registry(registry)
    if ids is None:
        return reg.claims()
    if isinstance(ids, str):
        ids = [part for part in ids.split(",") if part.strip()]
        if not ids:
            raise ValueError("claims must name at least one claim id")
    chosen: list[Claim] = []
    for item in ids:
        claim = item if isinstance(item, Claim) else reg.get(item)
        if all(c.id != claim.id for c in chosen):
            chosen.append(claim)
    rank = {c.id: i for i, c in enumerate(reg.claims())}
    return sorted(chosen, key=lambda c: rank.get(c.id, len(rank)))


def recipe_to_dict(recipe: Any) -> dict:
    """The JSON-safe dict form of a recipe: ``recipe.to_dict()``, or the recipe itself when it is a dict."""
    if hasattr(recipe, "to_dict"):
        out = recipe.to_dict()
    elif isinstance(recipe, dict):
        out = recipe
    else:
        raise TypeError(
            f"a recipe must have a to_dict() method or be a dict, got {type(recipe).__name__}"
        )
    if not isinstance(out, dict):
        raise TypeError(f"recipe.to_dict() must return a dict, got {type(out).__name__}")
    return out


def recipe_from_dict(claim: Claim, data: dict, cell: dict | None = None, profile: Any = None) -> Any:
    """Rebuild a recipe of ``claim`` from its dict form: the claim's own ``recipe_from_dict`` when it
    has one; else the kind of recipe the claim's strategy draws for ``cell`` (one example is drawn to
    see it): dicts stay dicts, an object with a ``from_dict`` classmethod is rebuilt by it; else
    ``rnn_core.data.Recipe.from_dict``."""
    if not isinstance(data, dict):
        raise ValueError(f"recipe must be a JSON object, got {type(data).__name__}")
    rebuild: Callable[[dict], Any] | None = getattr(claim, "recipe_from_dict", None)
    if rebuild is None and cell is not None and profile is not None:
        from claims.sampling import draw_recipes

        try:
            sample = draw_recipes(claim.strategy(cell, profile), 1, 0)
        except Exception:
            sample = []
        if sample and isinstance(sample[0], dict):
            return dict(data)
        if sample and callable(getattr(type(sample[0]), "from_dict", None)):
            rebuild = type(sample[0]).from_dict
    if rebuild is None:
        try:
            from rnn_core.data import Recipe
        except ImportError as exc:
            raise ValueError(
                f"claim {claim.id} has no recipe_from_dict and rnn_core.data.Recipe is unavailable: {exc}"
            ) from exc
        rebuild = Recipe.from_dict
    return rebuild(data)
