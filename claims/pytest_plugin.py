"""The rnn-claims pytest plugin (entry point ``pytest11: rnnclaims``), loaded wherever rnn-claims is
installed; the source checkout's root conftest.py loads it when the package is not installed.

- Options: ``--claims-profile`` (default ``$RNNCLAIMS_PROFILE`` or smoke), ``--claims-out`` (default
  ``$RNNCLAIMS_OUT`` or reports/pytest-latest), ``--claims-seed`` (default 0), ``--claims-dtype``
  (auto or float64), ``--claims-fresh`` (delete the folder's conflicting records and start over), ``--claims-registry`` (default ``$RNNCLAIMS_REGISTRY`` or default) and ``--device``
  (default ``$RNNCLAIMS_DEVICE`` or auto), exposed as the fixture ``device``.
- Threads: every xdist worker gets its share of the cores (cores // workers torch threads), so
  ``pytest -n N`` does not oversubscribe the machine (tests/ included).
- Records: each claim item (claims/test_claims.py) attaches its record to its report. The controlling
  process (never an xdist worker) runs the session as one run of :mod:`claims.lifecycle`, under the
  same folder rules as ``rnnclaims run``: at the first record it takes the results folder's lock and
  reconciles the folder (records of another profile, seed, dtype policy or commit end the session
  with a usage error unless ``--claims-fresh``; the session's claims' records whose cell left the grid
  are pruned); it writes every record as it arrives, and at the end writes ``_run.json`` (an
  interrupted session is marked ``interrupted``; it removes nothing beyond that pruning).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

RECORD_PROPERTY = "rnnclaims_record"

__all__ = ["RECORD_PROPERTY", "cell_test_id", "claims_options", "results_folder_path"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rnnclaims", "rnn-claims: claims as pytest items")
    group.addoption("--device", default=os.environ.get("RNNCLAIMS_DEVICE", "auto"),
                    help="torch device: auto, cpu, cuda or cuda:N (default: $RNNCLAIMS_DEVICE or auto)")
    group.addoption("--claims-profile", default=os.environ.get("RNNCLAIMS_PROFILE", "smoke"),
                    help="profile of the claim cells (default: $RNNCLAIMS_PROFILE or smoke)")
    group.addoption("--claims-out", default=os.environ.get("RNNCLAIMS_OUT", "reports/pytest-latest"),
                    help="output folder for the claim records (default reports/pytest-latest)")
    group.addoption("--claims-seed", default=os.environ.get("RNNCLAIMS_SEED", "0"),
                    help="run seed of every cell's draw (default 0)")
    group.addoption("--claims-dtype", default="auto", help="auto (each claim's precision) or float64")
    group.addoption("--claims-fresh", action="store_true", default=False,
                    help="delete the --claims-out folder's records of another profile, seed, dtype or commit "
                         "(and this session's claims' records) and start over, instead of refusing")
    group.addoption("--claims-registry", default=None,
                    help="claim catalogues (claims.registry spec; default $RNNCLAIMS_REGISTRY or 'default')")


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> str:
    """The device string chosen with --device (validated by the code that resolves it)."""
    return pytestconfig.getoption("--device")


def claims_options(config: pytest.Config) -> dict:
    """The validated claim options of this session (bad values raise ``pytest.UsageError``)."""
    from claims.cell import DTYPES
    from claims.profiles import get_profile
    from claims.registry import resolve_registry

    try:
        resolve_registry(config.getoption("--claims-registry"))  # first: it may register profiles
        profile = get_profile(config.getoption("--claims-profile"))
    except ValueError as exc:
        raise pytest.UsageError(f"--claims-profile: {exc}") from None
    text = str(config.getoption("--claims-seed"))
    if not text.isdigit():
        raise pytest.UsageError(f"--claims-seed must be an integer >= 0, got {text!r}")
    dtype = config.getoption("--claims-dtype")
    if dtype not in DTYPES:
        raise pytest.UsageError(f"--claims-dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return {"profile": profile, "seed": int(text), "dtype": dtype, "fresh": bool(config.getoption("--claims-fresh")),
            "registry": config.getoption("--claims-registry")}


def results_folder_path(config: pytest.Config) -> Path:
    out = Path(config.getoption("--claims-out"))
    return out if out.is_absolute() else Path(str(config.rootpath)) / out


def cell_test_id(claim_id: str, cell: dict) -> str:
    """The pytest id of a claim cell's item: ``CLAIM-name=value-...`` (``control`` for a control cell)."""
    parts = []
    for name in sorted(cell):
        if name == "control":
            if cell[name]:
                parts.append("control")
            continue
        value = cell[name]
        if isinstance(value, (list, tuple)):
            value = "-".join(str(v) for v in value)
        elif isinstance(value, float):
            value = f"{value:g}"
        parts.append(f"{name}={value}")
    return "-".join([claim_id, *parts])


class _RecordCollector:
    """Controller-side: one run of :mod:`claims.lifecycle` whose execute step is pytest's own (records
    attached by claim items, from xdist workers too, are written as they arrive)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: dict[tuple[str, str], dict] = {}
        self.started = time.time()
        self.folder = None
        self.run = None
        self.collected: set[tuple[str, str]] | None = None  # (claim, cell_key) of the collected items
        self.interrupted: int | None = None
        self.meta: dict = {}

    # plan and reconcile (at the first record) ---------------------------------------------------
    def _open(self):
        if self.folder is None:
            from claims.lifecycle import plan, reconcile, warn_stderr
            from claims.registry import resolve_registry
            from claims.store import ResultsFolder

            opts = claims_options(self.config)
            reg = resolve_registry(opts["registry"])
            claim_ids = {cid for cid, _ in (self.collected or set(self.records))}
            selected = [c for c in reg.claims() if c.id in claim_ids]
            run = plan("pytest claims", reg, selected, opts["profile"], seed=opts["seed"], dtype=opts["dtype"])
            folder = ResultsFolder(results_folder_path(self.config))
            folder.acquire("pytest claims")  # FolderBusy names the holder
            try:
                reconcile(folder, run, fresh=opts["fresh"], fresh_option="--claims-fresh", warn=warn_stderr)
            except BaseException:
                folder.release()
                raise
            self.folder, self.run = folder, run
        return self.folder

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from claims.lifecycle import RunConflict

        for name, value in getattr(report, "user_properties", ()):
            if name != RECORD_PROPERTY:
                continue
            try:
                record = json.loads(value)
            except (TypeError, ValueError):
                continue
            key = (record["claim"], record["cell_key"])
            if key in self.records:
                continue
            try:
                folder = self._open()
            except RunConflict as exc:
                pytest.exit(f"rnnclaims: {exc}", returncode=int(pytest.ExitCode.USAGE_ERROR))
            except OSError as exc:
                pytest.exit(f"rnnclaims: {exc}", returncode=3)
            folder.write(record)
            self.records[key] = record

    def _collected_ids(self, ids) -> None:
        from claims.registry import resolve_registry
        from claims.schema import cell_key

        opts = claims_options(self.config)
        reg = resolve_registry(opts["registry"])
        by_test_id = {cell_test_id(c.id, cell): (c.id, cell_key(cell)) for c in reg.claims()
                      for cell in c.cells(opts["profile"])}
        keys = set()
        for nodeid in ids:
            if "test_cell[" in nodeid:
                test_id = nodeid.split("test_cell[", 1)[1].rsplit("]", 1)[0]
                keys.add(by_test_id.get(test_id, ("?", test_id)))  # an unknown id keeps the run incomplete
        self.collected = (self.collected or set()) | keys

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._collected_ids([item.nodeid for item in session.items if "claim_cell" in getattr(item, "fixturenames", ())])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        self._collected_ids(ids)

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        self.interrupted = 2

    # finalize -----------------------------------------------------------------------------------
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.folder is None:
            return
        try:
            from claims.lifecycle import finalize

            interrupted = self.interrupted
            if interrupted is None and int(exitstatus) == int(pytest.ExitCode.INTERRUPTED):
                interrupted = 2
            workers: dict = {}
            for r in self.records.values():
                w = r.get("worker") or {}
                workers.setdefault((w.get("host"), w.get("pid")), w)
            xdist = getattr(self.config.option, "numprocesses", None)
            order = [c.id for c in self.run.registry.claims()]
            claim_ids = sorted({cid for cid, _ in self.records}, key=lambda c: order.index(c) if c in order else 0)
            self.meta = finalize(
                self.folder, self.run, ran=len(self.records), resumed=0, wall_s=time.time() - self.started,
                interrupted=interrupted, executor={"kind": "pytest-xdist" if xdist else "pytest", "workers": xdist or 1},
                workers=list(workers.values()), claims=claim_ids,
                run_keys=self.collected if self.collected is not None else set(self.records))
        finally:
            self.folder.release()

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.records:
            return
        from claims.schema import count_verdicts

        counts = ", ".join(f"{n} {v}" for v, n in count_verdicts(self.records.values()).items() if n)
        terminalreporter.write_line(
            f"rnnclaims: {len(self.records)} cells: {counts} -> {results_folder_path(self.config) / 'results'}"
            + ("" if self.meta.get("complete") else " (incomplete session)"))


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: its share of the cores
        from claims.environment import configure_worker, threads_per_worker

        configure_worker(threads_per_worker(int(workerinput.get("workercount", 1))))
    else:
        config.pluginmanager.register(_RecordCollector(config), "rnnclaims-record-collector")
