"""Tidy tables of a results folder, for notebooks and other tools (pandas; parquet needs pyarrow).

Four tables:

- **cells**: one row per cell. Every top-level scalar field of the record is a column under its own
  name (claim, cell_key, verdict, reason, examples, failures, inconclusive, margin, duration_s, device,
  dtype, profile, seed, git_commit, ...); the cell's parameters are columns under their own names
  (``param_<name>`` when a name is taken by a record field); the failure-rate interval is ``ci_lo`` /
  ``ci_hi``; the test's fields are ``test_<name>`` (test_delta, test_delta_1, test_alpha, test_beta,
  test_budget, test_futility, test_llr); measured values are ``measured_<key>_<stat>`` (mean / min / max
  / n), declared and measured constants ``declared_<key>`` / ``constant_<key>``; the worker is ``worker_<field>``.
- **series**: one row per series point: claim, cell_key, control, verdict, the cell's parameters, then
  the point's own fields (``example`` and whatever the claim plots).
- **thresholds**: one row per (claim, regime, L) of every threshold cell (``record["kind"] ==
  "threshold"``): the cell (claim, cell_key, regime, control, expect, verdict, m_min, m_max), then the
  length's search: L, asserted (the cell must hold and asserts this length: its ``asserted_lengths``,
  or every length when it names none), status (found / above / below / inconclusive / non-monotone),
  m_star (the posterior median of m*, empty when censored), lo / hi (the 95% interval of m*: "above" has
  lo = m_max and no hi, "below" no lo and hi = m_min), ratio = hi / lo (the resolution of m*, a factor),
  the certificate (certificate_m, certificate_verdict, certificate_examples, certificate_failures: the
  sequential test that certifies the status), examples, cost_s, monotone_p, n_probes and probes (every
  width drawn at, as JSON text).
- **growth**: one row per threshold cell: the fit of m*(L) ~ L^a against m*(L) ~ exp(b L) over its
  lengths, censored points as bounds: asserted (the cell must hold and asserts every length), law
  (which the data prefer), exponent with exponent_lo / exponent_hi (95% interval of a), rate with
  rate_lo / rate_hi, evidence_ratio (likelihood power / exponential, > 1 favours the power law), bound
  (the exponent bound the claim declares), points, censored, note.

Values that are not scalars (lists, dicts) are stored as JSON text; a column mixing text and numbers is
stored as text. :func:`load_frame` gives any of the tables as a pandas DataFrame.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

from claims.store import atomic_write_bytes, atomic_write_text, load_results

__all__ = ["TABLES", "THRESHOLD_STATUSES", "is_threshold", "cells_rows", "series_rows", "threshold_rows", "growth_rows", "load_frame",
           "export"]

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


#: The statuses of one length's threshold search (the record format of threshold cells).
THRESHOLD_STATUSES = ("found", "above", "below", "inconclusive", "non-monotone")

_CELL_FIELDS = ("claim", "cell_key", "regime", "control", "expect", "verdict", "m_min", "m_max")
THRESHOLD_COLUMNS = (*_CELL_FIELDS, "L", "asserted", "status", "m_star", "lo", "hi", "ratio", "certificate_m",
                     "certificate_verdict", "certificate_examples", "certificate_failures", "examples", "cost_s",
                     "monotone_p", "n_probes", "probes")
GROWTH_COLUMNS = (*_CELL_FIELDS, "asserted", "law", "exponent", "exponent_lo", "exponent_hi", "rate", "rate_lo", "rate_hi",
                  "evidence_ratio", "bound", "points", "censored", "note")


def _number(value: Any) -> float | None:
    """A finite float, else None (null, NaN, text, booleans)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def _pair(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _number(value[0]), _number(value[1])
    return None, None


def is_threshold(record: dict) -> bool:
    """A threshold cell's record: ``kind`` "threshold" with a ``thresholds`` list."""
    return record.get("kind") == "threshold" and isinstance(record.get("thresholds"), list)


def _cell_fields(record: dict) -> dict[str, Any]:
    params = record.get("params") or {}
    return {"claim": record.get("claim"), "cell_key": record.get("cell_key"), "regime": params.get("regime"),
            "control": bool(record.get("control", False)), "expect": record.get("expect"),
            "verdict": record.get("verdict"), "m_min": _number(params.get("m_min")),
            "m_max": _number(params.get("m_max"))}


def _asserted_lengths(record: dict) -> list | None:
    """The lengths a threshold cell asserts: None when the cell asserts nothing (``expect`` is not
    "holds"), its ``asserted_lengths``, or every length when it names none."""
    if record.get("expect") != "holds":
        return None
    params = record.get("params") or {}
    named = params.get("asserted_lengths") or []
    return list(named) if named else list(params.get("lengths") or [t.get("L") for t in record["thresholds"]
                                                                       if isinstance(t, dict)])


def threshold_rows(records: Iterable[dict]) -> list[dict]:
    """One dict per (threshold cell, length) in the order stored (see the module docstring); ``probes``
    stays the stored list of dicts here (the written table holds it as JSON text). Entries that are not
    objects are skipped; fields the record lacks are None."""
    rows = []
    for r in records:
        if not is_threshold(r):
            continue
        base = _cell_fields(r)
        asserted = _asserted_lengths(r)
        for t in r["thresholds"]:
            if not isinstance(t, dict):
                continue
            lo, hi = _pair(t.get("interval"))
            cert = t.get("certificate") if isinstance(t.get("certificate"), dict) else {}
            probes = [p for p in t.get("probes") or [] if isinstance(p, dict)]
            row = dict(base)
            row.update({
                "L": t.get("L"), "asserted": asserted is not None and t.get("L") in asserted, "status": t.get("status"), "m_star": _number(t.get("m_star")), "lo": lo, "hi": hi,
                "ratio": hi / lo if lo and hi else None,
                "certificate_m": _number(cert.get("m")), "certificate_verdict": cert.get("verdict"),
                "certificate_examples": cert.get("examples"), "certificate_failures": cert.get("failures"),
                "examples": t.get("examples"), "cost_s": _number(t.get("cost_s")),
                "monotone_p": _number(t.get("monotone_p")), "n_probes": len(probes), "probes": probes,
            })
            rows.append(row)
    return rows


def growth_rows(records: Iterable[dict]) -> list[dict]:
    """One dict per threshold cell with its stored ``growth`` fit (see the module docstring); a cell
    without one gets a row of None with note "no growth fit stored"."""
    rows = []
    for r in records:
        if not is_threshold(r):
            continue
        g = r.get("growth") if isinstance(r.get("growth"), dict) else None
        row = _cell_fields(r)
        asserted = _asserted_lengths(r)
        # the growth law is asserted when the cell asserts every one of its lengths
        row["asserted"] = asserted is not None and all(t.get("L") in asserted for t in r["thresholds"]
                                                       if isinstance(t, dict))
        e_lo, e_hi = _pair((g or {}).get("exponent_ci"))
        r_lo, r_hi = _pair((g or {}).get("rate_ci"))
        row.update({
            "law": (g or {}).get("law"), "exponent": _number((g or {}).get("exponent")),
            "exponent_lo": e_lo, "exponent_hi": e_hi, "rate": _number((g or {}).get("rate")),
            "rate_lo": r_lo, "rate_hi": r_hi, "evidence_ratio": _number((g or {}).get("evidence_ratio")),
            "bound": _number((g or {}).get("bound")), "points": (g or {}).get("points"),
            "censored": (g or {}).get("censored"),
            "note": (g or {}).get("note", "") if g is not None else "no growth fit stored",
        })
        rows.append(row)
    return rows


#: The tables :func:`export` writes and :func:`load_frame` gives, with their row builders and the
#: fixed columns of the tables whose rows may be absent (a run without threshold cells still writes
#: them, with a header only).
TABLES = {"cells": (cells_rows, None), "series": (series_rows, None),
          "thresholds": (threshold_rows, THRESHOLD_COLUMNS), "growth": (growth_rows, GROWTH_COLUMNS)}


def _pandas():
    try:
        import pandas
    except ImportError as exc:
        raise ImportError("tables need pandas: pip install 'rnn-claims[export]'") from exc
    return pandas


def _frame(rows: list[dict], columns: Iterable[str] | None = None):
    pd = _pandas()
    if columns is not None:
        rows = [{k: _scalar(row.get(k)) for k in columns} for row in rows]
        frame = pd.DataFrame(rows, columns=list(columns))
    else:
        frame = pd.DataFrame(rows)
    for col in frame.columns:
        kinds = {type(v) for v in frame[col] if v is not None and v == v}
        if str in kinds and kinds - {str}:
            frame[col] = frame[col].map(lambda v: None if v is None else str(v))
    return frame


def load_frame(results: str | os.PathLike, table: str = "cells"):
    """One table of a results folder (``cells``, ``series``, ``thresholds`` or ``growth``) as a pandas
    DataFrame."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {', '.join(TABLES)}, got {table!r}")
    loaded = load_results(results)
    rows_of, columns = TABLES[table]
    return _frame(rows_of(loaded.records), columns)


def export(results: str | os.PathLike, out: str | os.PathLike, *, fmt: str = "csv") -> list[Path]:
    """Write ``cells.<fmt>``, ``series.<fmt>``, ``thresholds.<fmt>`` and ``growth.<fmt>`` into ``out``
    (the last two with a header only when the results hold no threshold cell); returns their paths."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, got {fmt!r}")
    loaded = load_results(results)
    if not loaded.records:
        raise ValueError(f"no valid records in {results!s}")
    out = Path(out)
    paths = []
    for name, (rows_of, columns) in TABLES.items():
        frame = _frame(rows_of(loaded.records), columns)
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
