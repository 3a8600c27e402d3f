"""Session-wide pytest configuration for rnn-claims.

- hypothesis settings profiles: ``ci`` (derandomize=True, database=None, deadline=None, print_blob=True)
  and ``dev`` (defaults with deadline=None); loaded from ``HYPOTHESIS_PROFILE``, else ``ci`` when ``CI``
  is set, else ``dev``.
- ``--device`` (default ``RNNCLAIMS_DEVICE`` or ``auto``), exposed as the fixture ``device``.
- ``--claims-profile`` (default ``RNNCLAIMS_PROFILE`` or ``smoke``) and ``--claims-out`` (default
  ``RNNCLAIMS_OUT`` or ``reports/pytest-latest``) for ``pytest claims`` (see claims/test_claims.py).
- record collection: each claim item attaches its record (JSON text) to ``user_properties``; the
  controlling process (never an xdist worker) writes every record to ``<claims-out>/results/``, removes
  records of earlier sessions, writes ``_run.json`` and prints a one-line verdict summary.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import settings

RECORD_PROPERTY = "rnnclaims_record"

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rnnclaims")
    group.addoption("--device", default=os.environ.get("RNNCLAIMS_DEVICE", "auto"),
                    help="torch device: auto, cpu, cuda or cuda:N (default: $RNNCLAIMS_DEVICE or auto)")
    group.addoption("--claims-profile", default=os.environ.get("RNNCLAIMS_PROFILE", "smoke"),
                    help="profile for `pytest claims` (default: $RNNCLAIMS_PROFILE or smoke)")
    group.addoption("--claims-out", default=os.environ.get("RNNCLAIMS_OUT", "reports/pytest-latest"),
                    help="output directory for `pytest claims` records (default reports/pytest-latest)")


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> str:
    """The device string chosen with --device (validated by the code that resolves it)."""
    return pytestconfig.getoption("--device")


def claims_results_dir(config: pytest.Config) -> Path:
    out = Path(config.getoption("--claims-out"))
    if not out.is_absolute():
        out = Path(str(config.rootpath)) / out
    return out / "results"


class _RecordCollector:
    """Controller-side: gathers the records attached by claim items (from xdist workers too)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: dict[tuple[str, str], dict] = {}
        self.started = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in getattr(report, "user_properties", ()):
            if name != RECORD_PROPERTY:
                continue
            try:
                record = json.loads(value)
            except (TypeError, ValueError):
                continue
            key = (record["claim"], record["cell_key"])
            if key not in self.records:
                from claims.store import write_record

                write_record(claims_results_dir(self.config), record)
                self.records[key] = record

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.records:
            return
        from claims.store import read_record, write_run_meta
        from claims.runner import environment_info

        results = claims_results_dir(self.config)
        for path in results.glob("*/*.json"):  # the directory describes this session only
            record = read_record(path)
            if record is not None and (record["claim"], record["cell_key"]) not in self.records:
                path.unlink(missing_ok=True)
        per_claim: dict[str, float] = {}
        for record in self.records.values():
            per_claim[record["claim"]] = per_claim.get(record["claim"], 0.0) + float(record.get("duration_s") or 0)
        write_run_meta(results, {
            "schema": 1,
            "source": "pytest claims",
            "profile": self.config.getoption("--claims-profile"),
            "device": self.config.getoption("--device"),
            "wall_s": time.time() - self.started,
            "per_claim_wall_s": per_claim,
            "cells_total": len(self.records),
            "verdicts": self.verdicts(),
            **environment_info(),
        })

    def verdicts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.records.values():
            counts[record["verdict"]] = counts.get(record["verdict"], 0) + 1
        return counts

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.records:
            return
        counts = ", ".join(f"{n} {v}" for v, n in sorted(self.verdicts().items()))
        terminalreporter.write_line(
            f"rnnclaims: {len(self.records)} cells: {counts} -> {claims_results_dir(self.config)}"
        )


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # controller (or a run without xdist)
        config.pluginmanager.register(_RecordCollector(config), "rnnclaims-record-collector")
