"""Joining results folders (claims.merge, ``rnnclaims merge`` and ``rnnclaims report DIR1 DIR2``):
folders of different profiles, seeds or commits are refused unless allow_mixed; a cell present twice
with different verdicts is refused; every refusal names the folders."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from claims.merge import merge_folders, merged_view
from claims.store import load_results
from claims.session import run_profile

SPEC = "tests.toy_claims:TOY"
CLAIMS = "TOY-HOLDS,TOY-FAILS"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Two halves of one toy run (shards 1/2 and 2/2) and the whole run."""
    root = tmp_path_factory.mktemp("merge")
    kw = dict(registry=SPEC, claims=CLAIMS, device="cpu", report=False)
    whole = run_profile("smoke", root / "whole", **kw)
    a = run_profile("smoke", root / "a", shard=(1, 2), **kw)
    b = run_profile("smoke", root / "b", shard=(2, 2), **kw)
    assert a.records and b.records
    return root, whole, a, b


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite(folder: Path, **fields) -> None:
    """Change top-level fields of every record in ``folder`` (the records stay valid)."""
    for path in (folder / "results").glob("*/*.json"):
        record = json.loads(path.read_text())
        record.update(fields)
        path.write_text(json.dumps(record))


def _cells(records):
    return {(r["claim"], r["cell_key"]): r["verdict"] for r in records}


def test_halves_merge_into_the_whole(base, tmp_path):
    root, whole, a, b = base
    view = merged_view([root / "a", root / "b"], registry=SPEC)
    assert _cells(view.records) == _cells(whole.records)
    target, _ = merge_folders([root / "a", root / "b"], tmp_path / "m", registry=SPEC)
    assert _cells(load_results(target).records) == _cells(whole.records)


@pytest.mark.parametrize("field, value, what", [
    ("profile", "quick", "profiles"),
    ("seed", 7, "seeds"),
    ("git_commit", "0123456789abcdef0123456789abcdef01234567", "commits"),
])
def test_mixed_folders_are_refused_naming_them_unless_allow_mixed(base, tmp_path, field, value, what):
    root, whole, a, b = base
    other = _copy(root / "b", tmp_path / "other")
    _rewrite(other, **{field: value})
    with pytest.raises(ValueError) as info:
        merged_view([root / "a", other], registry=SPEC)
    text = str(info.value)
    assert f"different {what}" in text and "--allow-mixed" in text
    assert str(root / "a" / "results") in text and str(other / "results") in text
    assert str(value) in text
    view = merged_view([root / "a", other], allow_mixed=True, registry=SPEC)
    assert _cells(view.records) == _cells(whole.records)
    with pytest.raises(ValueError, match=f"different {what}"):
        merge_folders([root / "a", other], tmp_path / "m", registry=SPEC)
    assert not (tmp_path / "m").exists()  # nothing written on refusal
    target, _ = merge_folders([root / "a", other], tmp_path / "m", allow_mixed=True, registry=SPEC)
    assert len(load_results(target).records) == len(whole.records)


def test_folders_of_different_dtypes_are_refused(base, tmp_path):
    root, whole, a, b = base
    other = _copy(root / "b", tmp_path / "other")
    _rewrite(other, dtype="float32")
    with pytest.raises(ValueError, match="dtype"):
        merged_view([root / "a", other], registry=SPEC)


def test_cli_merge_refuses_mixed_folders_with_one_line(base, tmp_path):
    from claims.cli import main

    root, whole, a, b = base
    other = _copy(root / "b", tmp_path / "other")
    _rewrite(other, seed=3)
    out, err = io.StringIO(), io.StringIO()
    code = main(["merge", str(root / "a"), str(other), "--out", str(tmp_path / "m"), "--registry", SPEC],
                stdout=out, stderr=err)
    assert code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and "different seeds" in lines[0]
    assert str(root / "a" / "results") in lines[0] and str(other / "results") in lines[0]


def test_a_cell_present_twice_with_different_verdicts_is_refused_naming_both(base, tmp_path):
    root, whole, a, b = base
    left = _copy(root / "a", tmp_path / "left")
    right = _copy(root / "b", tmp_path / "right")
    # the same cell in both folders, with another verdict on the right
    path = next((left / "results").glob("*/*.json"))
    record = json.loads(path.read_text())
    flipped = {"holds": "fails", "fails": "holds"}.get(record["verdict"], "holds")
    twin = right / "results" / record["claim"] / path.name
    twin.parent.mkdir(parents=True, exist_ok=True)
    twin.write_text(json.dumps({**record, "verdict": flipped}))
    with pytest.raises(ValueError) as info:
        merged_view([left, right], registry=SPEC)
    text = str(info.value)
    assert f"{record['claim']}/{record['cell_key']}" in text
    assert str(left / "results") in text and str(right / "results") in text
    assert record["verdict"] in text and flipped in text and "--allow-mixed" in text
    view = merged_view([left, right], allow_mixed=True, registry=SPEC)  # keeps the first folder's
    kept = [r for r in view.records if (r["claim"], r["cell_key"]) == (record["claim"], record["cell_key"])]
    assert [r["verdict"] for r in kept] == [record["verdict"]]


def test_a_cell_present_twice_with_the_same_verdict_is_kept_once(base, tmp_path):
    root, whole, a, b = base
    view = merged_view([root / "a", root / "whole"], registry=SPEC)
    assert len(view.records) == len(whole.records)
    assert _cells(view.records) == _cells(whole.records)


def test_merge_refuses_a_non_empty_target_and_a_missing_folder(base, tmp_path):
    root, whole, a, b = base
    with pytest.raises(ValueError, match="already holds results"):
        merge_folders([root / "a", root / "b"], root / "whole", registry=SPEC)
    with pytest.raises(FileNotFoundError, match="nope"):
        merged_view([root / "a", tmp_path / "nope"], registry=SPEC)
    with pytest.raises(ValueError, match="at least one"):
        merged_view([], registry=SPEC)


def test_invalid_files_are_named_not_merged(base, tmp_path):
    root, whole, a, b = base
    other = _copy(root / "b", tmp_path / "other")
    bad = other / "results" / "TOY-HOLDS" / "L=9__m=9.json"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("{not json")
    view = merged_view([root / "a", other], registry=SPEC)
    assert [p for p, _ in view.invalid] == [bad]
    assert _cells(view.records) == _cells(whole.records)


def test_report_of_two_folders_is_one_report_of_the_merged_shards(base, tmp_path):
    from claims.cli import main

    root, whole, a, b = base
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", str(root / "a"), str(root / "b"), "--out", str(tmp_path / "rep"), "--registry", SPEC],
                stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert (tmp_path / "rep" / "index.html").is_file()
    bundle = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert _cells(bundle["records"]) == _cells(whole.records)
    assert bundle["run"]["source"] == "rnnclaims merge"
    assert sorted(tuple(s["shard"]) for s in bundle["run"]["shards"]) == [(1, 2), (2, 2)]
    html = (tmp_path / "rep" / "index.html").read_text()
    for cid in CLAIMS.split(","):
        assert cid in html


def test_report_of_mixed_folders_is_refused(base, tmp_path):
    from claims.cli import main

    root, whole, a, b = base
    other = _copy(root / "b", tmp_path / "other")
    _rewrite(other, profile="quick")
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", str(root / "a"), str(other), "--out", str(tmp_path / "rep"), "--registry", SPEC],
                stdout=out, stderr=err)
    assert code == 2 and "different profiles" in err.getvalue()
    assert not (tmp_path / "rep" / "index.html").exists()
