"""The rnn-claims pytest plugin (entry point ``pytest11: rnnclaims``), loaded wherever rnn-claims is
installed; the source checkout's root conftest.py loads it when the package is not installed.

- Options: ``--claims-profile`` (default ``$RNNCLAIMS_PROFILE`` or smoke), ``--claims-out`` (default
  ``$RNNCLAIMS_OUT`` or reports/pytest-latest), ``--claims-seed`` (default 0), ``--claims-dtype``
  (auto or float64), ``--claims-registry`` (default ``$RNNCLAIMS_REGISTRY`` or default) and ``--device``
  (default ``$RNNCLAIMS_DEVICE`` or auto), exposed as the fixture ``device``.
- Threads: every xdist worker gets its share of the cores (cores // workers torch threads), so
  ``pytest -n N`` does not oversubscribe the machine (tests/ included).
- Records: each claim item (claims/test_claims.py) attaches its record to its report; the controlling
  process (never an xdist worker) takes the results folder's lock at the first record, writes every
  record, and at the end of the session writes ``_run.json`` through claims.session (the one writer).
  Only after a complete session (every collected claim item ran, no interrupt) does it remove the
  records of the session's claims that this session did not write; an interrupted session removes
  nothing and is marked ``interrupted`` in ``_run.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

RECORD_PROPERTY = "rnnclaims_record"

__all__ = ["RECORD_PROPERTY", "claims_options", "results_folder_path"]


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
    return {"profile": profile, "seed": int(text), "dtype": dtype,
            "registry": config.getoption("--claims-registry")}


def results_folder_path(config: pytest.Config) -> Path:
    out = Path(config.getoption("--claims-out"))
    return out if out.is_absolute() else Path(str(config.rootpath)) / out


class _RecordCollector:
    """Controller-side: gathers the records attached by claim items (from xdist workers too)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: dict[tuple[str, str], dict] = {}
        self.started = time.time()
        self.started_iso = None
        self.folder = None
        self.collected: int | None = None
        self.interrupted: int | None = None
        self.reported: set[str] = set()

    # records ------------------------------------------------------------------------------------
    def _folder(self):
        if self.folder is None:
            from claims.environment import now
            from claims.session import ResultsFolder

            self.started_iso = now()
            folder = ResultsFolder(results_folder_path(self.config))
            folder.acquire("pytest claims")  # FolderBusy names the holder
            self.folder = folder
        return self.folder

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reported.add(report.nodeid)
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
                folder = self._folder()
            except OSError as exc:
                pytest.exit(f"rnnclaims: {exc}", returncode=3)
            folder.write(record)
            self.records[key] = record

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        count = sum(1 for item in session.items if "claim_cell" in getattr(item, "fixturenames", ()))
        self.collected = max(self.collected or 0, count)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        count = sum(1 for i in ids if "test_cell[" in i)
        self.collected = max(self.collected or 0, count)

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        self.interrupted = 2

    # end of session -----------------------------------------------------------------------------
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.folder is None:
            return
        try:
            self._finish(session, exitstatus)
        finally:
            self.folder.release()

    def _finish(self, session: pytest.Session, exitstatus: int) -> None:
        from claims.registry import resolve_registry
        from claims.schema import record_path
        from claims.session import grid_of, write_meta

        opts = claims_options(self.config)
        interrupted = self.interrupted
        if interrupted is None and int(exitstatus) == int(pytest.ExitCode.INTERRUPTED):
            interrupted = 2
        complete = interrupted is None and self.collected is not None and len(self.records) >= self.collected
        reg = resolve_registry(opts["registry"])
        by_id = {c.id: c for c in reg.claims()}
        session_claims = sorted({cid for cid, _ in self.records}, key=lambda c: list(by_id).index(c) if c in by_id else 0)
        if complete:
            scan = self.folder.scan(by_id)
            for record in scan.records:
                key = (record["claim"], record["cell_key"])
                if record["claim"] in session_claims and key not in self.records:
                    self.folder.remove(record_path(self.folder.path, *key))
        selected = [by_id[c] for c in session_claims if c in by_id]
        grid, _ = grid_of(selected, opts["profile"])
        workers = {}
        for r in self.records.values():
            w = r.get("worker") or {}
            workers.setdefault((w.get("host"), w.get("pid")), w)
        xdist = getattr(self.config.option, "numprocesses", None)
        self.meta = write_meta(
            self.folder, source="pytest claims", profile=opts["profile"], seed=opts["seed"], dtype=opts["dtype"],
            selected=session_claims, total=len(grid), ran=len(self.records), resumed=0,
            wall_s=time.time() - self.started, started=self.started_iso, interrupted=interrupted,
            executor={"kind": "pytest-xdist" if xdist else "pytest", "workers": xdist or 1}, workers=list(workers.values()),
            by_id=by_id, run_keys=set(self.records), complete=complete)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.records:
            return
        from claims.schema import count_verdicts

        counts = ", ".join(f"{n} {v}" for v, n in count_verdicts(self.records.values()).items() if n)
        terminalreporter.write_line(
            f"rnnclaims: {len(self.records)} cells: {counts} -> {results_folder_path(self.config) / 'results'}"
            + ("" if getattr(self, "meta", {}).get("complete") else " (incomplete session: nothing pruned)"))


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: its share of the cores
        from claims.environment import configure_worker, threads_per_worker

        configure_worker(threads_per_worker(int(workerinput.get("workercount", 1))))
    else:
        config.pluginmanager.register(_RecordCollector(config), "rnnclaims-record-collector")
