"""More toy registries for the scale-out and packaging tests (tests/test_dask.py, test_shards.py,
test_merge.py, test_registry.py, test_scheduling.py). tests/toy_claims.py stays untouched.

- ``FEW``: the real FWD claim restricted to three cells (a grid cell, its threshold search at one length,
  a control), so that a test can run real numerics on every executor in seconds;
- ``CLASH_TOY``: a claim with the id TOY-HOLDS (clashes with tests.toy_claims:TOY);
- ``CLASH_BUILTIN``: a claim with the id FWD (clashes with the built-in catalogue);
- ``EXTRA``: TOY-EXTRA, a claim of its own (no clash), used as a simulated installed plugin;
- ``SETTINGS_TOY``: TOY-SET, which knows only the profile "tiny-test" (its cells read the setting);
- ``PARAMS``: TOY-PARAMS, whose cell parameters ``seed`` and ``profile`` are also record fields and whose
  series rows carry ``m`` and ``claim`` (names the export must keep apart);
- ``COSTLY``: TOY-COST, whose per-example cost is ``m / 1000`` seconds (``cost`` = 0.5 for its
  control), for the cost model and shard balance;
- ``KILLER``: TOY-KILLER, whose every example kills its own process (a worker lost twice), beside
  TOY-CALM, which sleeps ``RNNCLAIMS_TOY_SLEEP`` per example and passes;
- :class:`DenyFolder`: a distributed WorkerPlugin that makes the worker process unable to open,
  create or rename anything under a folder (a worker without access to the output folder).
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import io
import os
import time

from hypothesis import strategies as st

from claims.base import Claim, Outcome
from claims.registry import Registry

try:  # pragma: no cover - distributed is a dependency of the package
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover
    WorkerPlugin = object


def _toy(cid: str, **kw) -> Claim:
    base = dict(
        id=cid, title=f"toy {cid.lower()}", operationalizes="nothing (engine test)",
        statement="a toy statement", pass_rule="toy rule", negative_control="toy control",
        expected="toy", axes=("m", "L"), declared={"c": 1.0},
        cells=lambda p: [{"m": p.widths[0], "L": p.lengths[0]}],
        strategy=lambda cell, p: st.fixed_dictionaries({"x": st.integers(0, 100), "seed": st.integers(0, 9)}),
        evaluate=lambda cell, recipe, ctx: Outcome(ok=not cell.get("control", False), margin=0.5,
                                                   measured={"x": recipe["x"]}),
    )
    base.update(kw)
    return Claim(**base)


# --------------------------------------------------------------------------------------------------
# FWD, restricted to two smoke cells


def _fwd_few_cells(profile):
    from claims.registry import get_claim

    cells = get_claim("FWD", "claims.catalogue").cells(profile)
    search = [c for c in cells if c.get("kind") == "threshold"][0]
    controls = [c for c in cells if c.get("control")]
    # one grid cell that holds, the threshold search at its shortest length, one control
    grid = {"m": 256, "L": 2, "regime": search["regime"]}
    short = {**search, "lengths": search["lengths"][:1], "asserted_lengths": search["lengths"][:1]}
    return [grid, short] + controls[:1]


def _fwd_few() -> Claim:
    from claims.registry import get_claim

    return dataclasses.replace(get_claim("FWD", "claims.catalogue"), cells=_fwd_few_cells)


FEW = Registry("tests.toy_claims_extra:FEW")
FEW.register(_fwd_few())

# --------------------------------------------------------------------------------------------------
# clashing and extra catalogues

CLASH_TOY = Registry("tests.toy_claims_extra:CLASH_TOY")
CLASH_TOY.register(_toy("TOY-HOLDS"))

CLASH_BUILTIN = Registry("tests.toy_claims_extra:CLASH_BUILTIN")
CLASH_BUILTIN.register(_toy("FWD"))

EXTRA = Registry("tests.toy_claims_extra:EXTRA")
EXTRA.register(_toy("TOY-EXTRA"))

# a claim with its own settings for a third-party profile "tiny-test" (tests/test_registry.py)

SETTINGS_TOY = Registry("tests.toy_claims_extra:SETTINGS_TOY")
SETTINGS_TOY.register(_toy("TOY-SET", settings={"tiny-test": {"k": 3}},
                           cells=lambda p: [{"m": p.widths[0], "L": 2, "k": SETTINGS_TOY.get("TOY-SET")
                                             .settings_for(p)["k"]}]))

# parameters and series fields whose names are taken (tests/test_export.py)


def _params_eval(cell, recipe, ctx):
    return Outcome(ok=True, margin=0.25, measured={"x": recipe["x"], "label": "a,b"},
                   series=[{"m": 1, "claim": "from-series", "value": recipe["x"]}])


PARAMS = Registry("tests.toy_claims_extra:PARAMS")
PARAMS.register(_toy("TOY-PARAMS", evaluate=_params_eval,
                     cells=lambda p: [{"m": 4, "seed": 7, "profile": "p1", "note": "a, b\nc"}]))

# --------------------------------------------------------------------------------------------------
# cost model


def _costly_cost(cell, profile):
    return 0.5 if cell.get("control") else cell["m"] / 1000


COSTLY = Registry("tests.toy_claims_extra:COSTLY")
COSTLY.register(_toy("TOY-COST", cost=_costly_cost,
                     cells=lambda p: [{"m": m, "L": L} for m in p.widths for L in p.lengths]
                     + [{"m": p.widths[0], "L": p.lengths[0], "control": True}]))

# --------------------------------------------------------------------------------------------------
# a cell that kills its worker


def _kill_self(cell, recipe, ctx):
    os._exit(17)


def _calm(cell, recipe, ctx):
    time.sleep(float(os.environ.get("RNNCLAIMS_TOY_SLEEP", "0.01")))
    return Outcome(ok=True, margin=0.5, measured={"x": recipe["x"]})


KILLER = Registry("tests.toy_claims_extra:KILLER")
KILLER.register(_toy("TOY-KILLER", evaluate=_kill_self))
KILLER.register(_toy("TOY-CALM", evaluate=_calm,
                     cells=lambda p: [{"m": m, "L": L, "r": r} for m in p.widths for L in p.lengths
                                      for r in range(2)]))


# --------------------------------------------------------------------------------------------------
# a worker without access to a folder


class DenyFolder(WorkerPlugin):
    """In each worker process: open(), io.open, os.open, os.mkdir, os.replace and os.rename of any path
    under ``root`` raise PermissionError (EACCES). ``teardown`` restores them."""

    name = "deny-folder"

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def _denied(self, path) -> bool:
        try:
            p = os.path.realpath(os.fspath(path))
        except TypeError:  # a file descriptor
            return False
        return p == self.root or p.startswith(self.root + os.sep)

    def setup(self, worker=None) -> None:
        saved = {"open": builtins.open, "io.open": io.open, "os.open": os.open, "os.mkdir": os.mkdir,
                 "os.replace": os.replace, "os.rename": os.rename}
        self._saved = saved
        deny = self._denied

        def guard(name, fn, *paths):
            def wrapped(*args, **kwargs):
                for i in paths:
                    if len(args) > i and deny(args[i]):
                        raise PermissionError(errno.EACCES, f"denied by the test ({name})", str(args[i]))
                return fn(*args, **kwargs)
            return wrapped

        builtins.open = guard("open", saved["open"], 0)
        io.open = guard("io.open", saved["io.open"], 0)
        os.open = guard("os.open", saved["os.open"], 0)
        os.mkdir = guard("os.mkdir", saved["os.mkdir"], 0)
        os.replace = guard("os.replace", saved["os.replace"], 0, 1)
        os.rename = guard("os.rename", saved["os.rename"], 0, 1)

    def teardown(self, worker=None) -> None:
        saved = getattr(self, "_saved", None)
        if saved:
            builtins.open, io.open, os.open = saved["open"], saved["io.open"], saved["os.open"]
            os.mkdir, os.replace, os.rename = saved["os.mkdir"], saved["os.replace"], saved["os.rename"]


def try_write_under(root: str) -> str:
    """Run in a worker: try to create a file under ``root``; returns "denied" or "written"."""
    try:
        with open(os.path.join(root, "probe.txt"), "w") as fh:
            fh.write("x")
    except PermissionError:
        return "denied"
    return "written"
