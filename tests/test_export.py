"""Tidy export (claims.export, ``rnnclaims export RESULTS --format csv|parquet --out DIR``).

Round trip: for every record and every top-level field whose value is a scalar (str, int, float, bool,
None), the cells table has a column of that name holding the same value in that record's row. Parquet
keeps values exactly; CSV cannot tell an empty string from a missing value, so there (and only there)
"" and None/NaN count as the same.
"""

from __future__ import annotations

import io
import json
import math
import sys

import pytest

pd = pytest.importorskip("pandas")

from claims.export import cells_rows, export, load_frame, series_rows  # noqa: E402
from claims.schema import load_results  # noqa: E402
from claims.session import run_profile  # noqa: E402

SPEC = "tests.toy_claims:TOY,tests.toy_claims_extra:PARAMS"
SCALARS = (str, int, float, bool, type(None))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNCLAIMS_TOY_SLEEP", "0")
        summary = run_profile("smoke", root / "run", registry=SPEC, device="cpu", report=False)
    verdicts = {r["verdict"] for r in summary.records}
    assert {"holds", "fails", "error", "skipped"} <= verdicts  # every kind of record is exported
    return root / "run", load_results(root / "run").records


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _same(expected, got, *, csv: bool) -> bool:
    if hasattr(got, "item"):  # numpy scalar
        got = got.item()
    if _missing(expected) or (csv and expected == ""):
        return _missing(got) or (csv and got == "")
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(got, (bool, int)) and bool(got) == expected and isinstance(expected, bool)
    if isinstance(expected, (int, float)):
        return isinstance(got, (int, float)) and not _missing(got) and float(got) == float(expected)
    return got == expected


def _by_cell(frame):
    return {(row["claim"], row["cell_key"]): row for row in frame.to_dict("records")}


def _check_round_trip(frame, records, *, csv: bool):
    rows = _by_cell(frame)
    assert len(frame) == len(records) == len(rows)  # one row per cell
    problems = []
    for r in records:
        row = rows[(r["claim"], r["cell_key"])]
        for name, value in r.items():
            if not isinstance(value, SCALARS):
                continue
            if name not in row:
                problems.append(f"{r['claim']}/{r['cell_key']}: no column {name!r}")
            elif not _same(value, row[name], csv=csv):
                problems.append(f"{r['claim']}/{r['cell_key']}: {name} = {value!r}, table has {row[name]!r}")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_export_round_trips_every_scalar_field(results, tmp_path, fmt):
    from claims.cli import main

    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    folder, records = results
    out, err = io.StringIO(), io.StringIO()
    code = main(["export", str(folder), "--format", fmt, "--out", str(tmp_path / "t")], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert out.getvalue().splitlines() == [f"wrote {tmp_path / 't' / f'cells.{fmt}'}",
                                           f"wrote {tmp_path / 't' / f'series.{fmt}'}"]
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    cells = read(tmp_path / "t" / f"cells.{fmt}")
    _check_round_trip(cells, records, csv=fmt == "csv")
    series = read(tmp_path / "t" / f"series.{fmt}")
    assert len(series) == sum(len(r.get("series") or []) for r in records)


def test_load_frame_round_trips_exactly(results):
    folder, records = results
    _check_round_trip(load_frame(folder), records, csv=False)
    _check_round_trip(load_frame(folder / "results"), records, csv=False)  # OUT or OUT/results


def test_params_are_columns_and_taken_names_are_prefixed(results):
    folder, records = results
    rows = _by_cell(load_frame(folder))
    for r in records:
        row = rows[(r["claim"], r["cell_key"])]
        for name, value in r["params"].items():
            column = f"param_{name}" if name in r and isinstance(r[name], SCALARS) else name
            assert column in row, (r["claim"], name)
            assert _same(value, row[column], csv=False) or row[column] == json.dumps(value, sort_keys=True)
    row = rows[("TOY-PARAMS", "m=4__note=a__b_c__profile=p1__seed=7")]
    assert (row["param_seed"], row["seed"]) == (7, 0)  # the cell's parameter beside the run seed
    assert (row["param_profile"], row["profile"]) == ("p1", "smoke")
    assert row["note"] == "a, b\nc" and row["m"] == 4
    slow = [row for key, row in rows.items() if key[0] == "TOY-SLOW"]
    assert slow and all({"m", "L", "r"} <= set(row) for row in slow)
    # nested fields as documented
    holds = next(row for key, row in rows.items() if key[0] == "TOY-HOLDS" and not row["control"])
    rec = next(r for r in records if (r["claim"], r["cell_key"]) == (holds["claim"], holds["cell_key"]))
    assert (holds["ci_lo"], holds["ci_hi"]) == tuple(rec["failure_rate_ci"])
    assert holds["measured_x_mean"] == pytest.approx(rec["measured"]["x"]["mean"])
    assert holds["test_delta"] == rec["test"]["delta"] and holds["test_budget"] == rec["test"]["budget"]
    assert holds["declared_c"] == 1.0 and holds["constant_c"] == pytest.approx(rec["measured_constants"]["c"])
    assert holds["worker_pid"] == rec["worker"]["pid"]


def test_series_rows_one_per_point(results):
    folder, records = results
    frame = load_frame(folder, "series")
    expected = [(r["claim"], r["cell_key"], point) for r in records for point in (r.get("series") or [])]
    assert len(frame) == len(expected) > 0
    rows = frame.to_dict("records")
    for row, (claim, key, point) in zip(rows, expected):
        assert (row["claim"], row["cell_key"]) == (claim, key)
        for name, value in point.items():
            column = f"series_{name}" if name in ("claim", "cell_key", "control", "verdict") or \
                name in next(r for r in records if r["claim"] == claim and r["cell_key"] == key)["params"] else name
            assert _same(value, row[column], csv=False), (claim, name, value, row[column])
    params = next(row for row in rows if row["claim"] == "TOY-PARAMS")
    assert (params["series_claim"], params["series_m"], params["m"]) == ("from-series", 1, 4)
    assert {"example", "verdict", "control"} <= set(params)


def test_rows_without_pandas(results):
    folder, records = results
    cells = cells_rows(records)
    assert len(cells) == len(records)
    assert len(series_rows(records)) == sum(len(r.get("series") or []) for r in records)


def test_missing_pandas_is_one_line(results, tmp_path, monkeypatch):
    from claims.cli import main

    folder, _ = results
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    out, err = io.StringIO(), io.StringIO()
    code = main(["export", str(folder), "--out", str(tmp_path / "t")], stdout=out, stderr=err)
    assert code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnclaims: error: ") and "pandas" in lines[0]
    assert "pip install" in lines[0]
    assert not (tmp_path / "t" / "cells.csv").exists()
    with pytest.raises(ImportError, match="pandas"):
        load_frame(folder)


def test_missing_pyarrow_is_one_line(results, tmp_path, monkeypatch):
    from claims.cli import main

    folder, _ = results
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out, err = io.StringIO(), io.StringIO()
    code = main(["export", str(folder), "--format", "parquet", "--out", str(tmp_path / "t")], stdout=out, stderr=err)
    assert code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and "pyarrow" in lines[0] and "parquet" in lines[0]
    assert not (tmp_path / "t" / "cells.parquet").exists()


def test_bad_format_and_empty_folder(results, tmp_path):
    from claims.cli import main

    folder, _ = results
    out, err = io.StringIO(), io.StringIO()
    assert main(["export", str(folder), "--format", "xlsx", "--out", str(tmp_path / "t")], stdout=out, stderr=err) == 2
    assert "--format" in err.getvalue() and len(err.getvalue().splitlines()) == 1
    (tmp_path / "empty" / "results").mkdir(parents=True)
    with pytest.raises(ValueError, match="no valid records"):
        export(tmp_path / "empty", tmp_path / "t")
    with pytest.raises(ValueError, match="table must be"):
        load_frame(folder, "rows")
