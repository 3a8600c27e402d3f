"""The catalogue: one module per claim, each registering its :class:`claims.base.Claim`.

Importing this package imports every module in it (modules whose names start with ``_`` excepted), in
name order; :func:`claims.registry.all_claims` sorts the claims into the SPEC's catalogue order. A
module that fails to import raises ``ImportError`` naming it: a broken claim is never silently dropped.
"""

from __future__ import annotations

import importlib
import pkgutil

_LOADED: list[str] = []

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
    if _info.name.startswith("_"):
        continue
    _name = f"{__name__}.{_info.name}"
    try:
        importlib.import_module(_name)
    except Exception as _exc:  # re-raised with the module's name so the CLI can say which one broke
        raise ImportError(f"claim module {_name} failed to import: {type(_exc).__name__}: {_exc}") from _exc
    _LOADED.append(_name)
