"""What the cluster tests send to Dask workers (importable there, light to import):

- MEM: a claim whose cells declare a memory estimate (``need_mib``) and always hold; the cell's
  ``i`` tells its copies apart;
- OtherTorch: a WorkerPlugin that makes the workers it names report another torch version, as a
  worker of another installation would (its records then carry that version too);

and :func:`loopback_cluster`, the LocalCluster the Dask tests start (worker processes, 127.0.0.1).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from distributed import LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin
from hypothesis import strategies as st

from claims.base import Claim, Outcome
from claims.registry import Registry

MEM = Registry("tests.cluster_toys:MEM")
MIB = 2**20


def _holds(cell, recipe, ctx):
    return Outcome(ok=True, margin=0.0, measured={"x": recipe["x"]})


def _cells(profile):
    # 4 cells that fit any worker (64 MiB), 6 that fit only a worker with a limit >= 1.67 GiB (1.5 GiB),
    # 2 that fit no worker of the tests (64 GiB)
    return ([{"need_mib": 64, "i": i} for i in range(4)] + [{"need_mib": 1536, "i": i} for i in range(6)]
            + [{"need_mib": 65536, "i": i} for i in range(2)])


MEM.register(Claim(
    id="TOY-MEM", title="toy memory estimate", operationalizes="nothing (engine test)",
    statement="a toy statement", pass_rule="toy rule", negative_control="none", expected="toy",
    axes=("need_mib", "i"), declared={}, cells=_cells,
    strategy=lambda cell, p: st.fixed_dictionaries({"x": st.integers(0, 100)}), evaluate=_holds,
    memory_bytes=lambda cell, p: int(cell["need_mib"]) * MIB))


class OtherTorch(WorkerPlugin):
    """On the workers named in ``names`` (all when None): ``claims.environment`` reports torch
    ``version`` instead of the installed one."""

    name = "other-torch"

    def __init__(self, version: str, names=None) -> None:
        self.version = version
        self.names = None if names is None else set(names)

    def setup(self, worker=None) -> None:
        if self.names is not None and getattr(worker, "name", None) not in self.names:
            return
        import claims.environment as env
        import claims.workercheck as wc

        real = env._versions
        version = self.version
        env._versions = lambda: {**real(), "torch": version}
        wc._CHECKED.clear()


@contextmanager
def loopback_cluster(n_workers: int, **kwargs):
    """A LocalCluster of ``n_workers`` single-threaded worker processes, every address on 127.0.0.1."""
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.ERROR, **kwargs)
    try:
        yield cluster
    finally:
        cluster.close()
