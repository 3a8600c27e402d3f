"""The catalogue: one module per claim, each registering its :class:`claims.base.Claim`.

Importing this package imports every module in it (modules whose names start with ``_`` excepted): those
of :data:`ORDER` first, in that order (the SPEC's section 4), then any other in name order. Each module
registers its claim on import, and the registry keeps registration order, so this is the catalogue's
order everywhere (runs, reports, ``rnnclaims list``). A
module that fails to import raises ``ImportError`` naming it: a broken claim is never silently dropped.
"""

from __future__ import annotations

import importlib
import pkgutil

#: the modules in the SPEC's catalogue order
ORDER: tuple[str, ...] = (
    "fwd", "bwd", "grad", "ntk_id", "ntk_conv", "ntk_pd", "ntk_pd_m", "pert", "lazy",
    "gen_add", "gen_krr", "cplx_add", "cplx_nvar", "rand_label",
)

_LOADED: list[str] = []

for _info in sorted(pkgutil.iter_modules(__path__),
                    key=lambda info: (ORDER.index(info.name) if info.name in ORDER else len(ORDER), info.name)):
    if _info.name.startswith("_"):
        continue
    _name = f"{__name__}.{_info.name}"
    try:
        importlib.import_module(_name)
    except Exception as _exc:  # re-raised with the module's name so the CLI can say which one broke
        raise ImportError(f"claim module {_name} failed to import: {type(_exc).__name__}: {_exc}") from _exc
    _LOADED.append(_name)
