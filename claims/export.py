"""Tidy tables of a results folder, for notebooks and other tools (pandas; parquet needs pyarrow).

Two tables:

- **cells**: one row per cell. Every top-level scalar field of the record is a column under its own
  name (claim, cell_key, verdict, reason, examples, failures, inconclusive, margin, duration_s, device,
  dtype, profile, seed, git_commit, ...); the cell's parameters are columns under their own names
  (``param_<name>`` when a name is taken by a record field); the failure-rate interval is ``ci_lo`` /
  ``ci_hi``; the test's fields are ``test_<name>`` (test_delta, test_delta_1, test_alpha, test_beta,
  test_budget, test_futility, test_llr); measured values are ``measured_<key>_<stat>`` (mean / min / max
  / n), declared and measured constants ``declared_<key>`` / ``constant_<key>``; the worker is ``worker_<field>``.
- **series**: one row per series point: claim, cell_key, control, verdict, the cell's parameters, then
  the point's own fields (``example`` and whatever the claim plots).

Values that are not scalars (lists, dicts) are stored as JSON text; a column mixing text and numbers is
stored as text. :func:`load_frame` gives either table as a pandas DataFrame.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

from claims.schema import atomic_write_bytes, atomic_write_text, load_results

__all__ = ["cells_rows", "series_rows", "load_frame", "export"]

_SCALARS = (str, int, float, bool, type(None))


def _scalar(value: Any) -> Any:
    return value if isinstance(value, _SCALARS) else json.dumps(value, sort_keys=True)


def _param_columns(record: dict, taken: Iterable[str]) -> dict[str, Any]:
    taken = set(taken)
    out = {}
    for name, value in (record.get("params") or {}).items():
        out[f"param_{name}" if name in taken else name] = _scalar(value)
    return out


def cells_rows(records: Iterable[dict]) -> list[dict]:
    """One dict per record (see the module docstring)."""
    rows = []
    for r in records:
        row: dict[str, Any] = {k: v for k, v in r.items() if isinstance(v, _SCALARS)}
        row.update(_param_columns(r, row))
        ci = r.get("failure_rate_ci") or [None, None]
        row["ci_lo"], row["ci_hi"] = ci[0], ci[1]
        for name, value in (r.get("test") or {}).items():
            row[f"test_{name}"] = _scalar(value)
        for key, agg in (r.get("measured") or {}).items():
            if isinstance(agg, dict):
                for stat, value in agg.items():
                    row[f"measured_{key}_{stat}"] = _scalar(value)
            else:
                row[f"measured_{key}"] = _scalar(agg)
        for key, value in (r.get("declared_constants") or {}).items():
            row[f"declared_{key}"] = _scalar(value)
        for key, value in (r.get("measured_constants") or {}).items():
            row[f"constant_{key}"] = _scalar(value)
        for key, value in (r.get("worker") or {}).items():
            row[f"worker_{key}"] = _scalar(value)
        rows.append(row)
    return rows


def series_rows(records: Iterable[dict]) -> list[dict]:
    """One dict per series point of every record."""
    rows = []
    base_fields = ("claim", "cell_key", "control", "verdict")
    for r in records:
        base = {k: r.get(k) for k in base_fields}
        base.update(_param_columns(r, base_fields))
        for point in r.get("series") or []:
            row = dict(base)
            for k, v in point.items():
                row[k if k not in base else f"series_{k}"] = _scalar(v)
            rows.append(row)
    return rows


def _pandas():
    try:
        import pandas
    except ImportError as exc:
        raise ImportError("tables need pandas: pip install 'rnn-claims[export]'") from exc
    return pandas


def _frame(rows: list[dict]):
    pd = _pandas()
    frame = pd.DataFrame(rows)
    for col in frame.columns:
        kinds = {type(v) for v in frame[col] if v is not None and v == v}
        if str in kinds and kinds - {str}:
            frame[col] = frame[col].map(lambda v: None if v is None else str(v))
    return frame


def load_frame(results: str | os.PathLike, table: str = "cells"):
    """The ``cells`` or ``series`` table of a results folder as a pandas DataFrame."""
    if table not in ("cells", "series"):
        raise ValueError(f"table must be 'cells' or 'series', got {table!r}")
    loaded = load_results(results)
    rows = cells_rows(loaded.records) if table == "cells" else series_rows(loaded.records)
    return _frame(rows)


def export(results: str | os.PathLike, out: str | os.PathLike, *, fmt: str = "csv") -> list[Path]:
    """Write ``cells.<fmt>`` and ``series.<fmt>`` into ``out``; returns their paths."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, got {fmt!r}")
    loaded = load_results(results)
    if not loaded.records:
        raise ValueError(f"no valid records in {results!s}")
    out = Path(out)
    paths = []
    for name, rows in (("cells", cells_rows(loaded.records)), ("series", series_rows(loaded.records))):
        frame = _frame(rows)
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            atomic_write_text(path, frame.to_csv(index=False))
        else:
            try:
                import pyarrow  # noqa: F401
            except ImportError as exc:
                raise ImportError("parquet needs pyarrow: pip install 'rnn-claims[export]'") from exc
            buffer = io.BytesIO()
            frame.to_parquet(buffer, index=False)
            atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths
