"""run_cell / run_profile / reproduce on the toy claims of tests/toy_claims.py."""

import dataclasses
import json

import pytest

from claims.profiles import get_profile
from claims.registry import Registry, select_claims
from claims.runner import cell_seed, draw_recipes, reproduce, run_cell, run_profile
from claims.store import load_results
from tests.toy_claims import TOY

SMOKE = get_profile("smoke")


def test_holding_claim_record_fields():
    rec = run_cell(TOY.get("TOY-HOLDS"), {"m": 256, "L": 2}, SMOKE, device="cpu")
    assert rec["verdict"] == "holds" and rec["must_hold"] and not rec["control"]
    assert rec["examples"] == 5 and rec["failures"] == 0 and rec["failure_rate_ci"][1] < 0.5
    xs = [r["x"] for r in rec["recipes"]]
    assert rec["margin"] == pytest.approx(max(xs) / 200)
    assert rec["measured"]["x"] == {"mean": pytest.approx(sum(xs) / 5), "min": min(xs), "max": max(xs), "n": 5}
    assert rec["measured"]["tag"] == {"values": ["t"]}
    assert rec["measured_constants"] == {"c": pytest.approx(max(xs) / 100)}
    assert [row["example"] for row in rec["series"]] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert rec["seeds"]["draw_seed"] == cell_seed("TOY-HOLDS", {"m": 256, "L": 2})
    assert rec["failing_recipe"] is None and rec["shrunk"] is False
    for key in ("torch", "numpy", "scipy", "hypothesis", "python"):
        assert rec["versions"][key]
    assert rec["device"] == "cpu" and rec["profile"] == "smoke" and rec["duration_s"] >= 0
    json.dumps(rec, allow_nan=True)


def test_draws_are_reproducible_and_differ_between_cells():
    strategy = TOY.get("TOY-HOLDS").strategy({}, SMOKE)
    a = draw_recipes(strategy, 5, cell_seed("X", {"m": 64}))
    assert a == draw_recipes(strategy, 5, cell_seed("X", {"m": 64}))
    assert a != draw_recipes(strategy, 5, cell_seed("X", {"m": 256}))
    assert len(a) == 5


def test_control_cell_fails_and_is_not_shrunk():
    rec = run_cell(TOY.get("TOY-HOLDS"), {"m": 64, "L": 2, "control": True}, SMOKE, device="cpu")
    assert rec["control"] and not rec["must_hold"]
    assert rec["verdict"] == "fails" and rec["failing_recipe"] == rec["recipes"][0]
    assert rec["shrunk"] is False and rec["shrink_evaluations"] == 0
    assert "control" not in rec["params"]


def test_failing_claim_is_shrunk_to_the_minimal_recipe():
    profile = dataclasses.replace(SMOKE, shrink_budget=200)
    rec = run_cell(TOY.get("TOY-FAILS"), {"m": 64, "L": 2}, profile, device="cpu")
    assert rec["verdict"] == "fails" and rec["failures"] >= 3
    assert rec["failing_recipe"] == {"x": 10, "seed": 0} and rec["shrunk"] is True
    assert 0 < rec["shrink_evaluations"] <= 200
    assert rec["failing_outcome"]["ok"] is False


def test_shrinking_respects_the_budget():
    profile = dataclasses.replace(SMOKE, shrink_budget=3)
    rec = run_cell(TOY.get("TOY-FAILS"), {"m": 64, "L": 2}, profile, device="cpu")
    assert rec["shrink_evaluations"] <= 3 and rec["failing_recipe"]["x"] >= 10
    none = run_cell(TOY.get("TOY-FAILS"), {"m": 64, "L": 2}, dataclasses.replace(SMOKE, shrink_budget=0), device="cpu")
    assert none["shrunk"] is False and none["failing_recipe"] in none["recipes"]


def test_raising_claim_gives_error_with_message():
    rec = run_cell(TOY.get("TOY-RAISES"), {"m": 1, "L": 2}, SMOKE, device="cpu")
    assert rec["verdict"] == "error"
    assert "RuntimeError: toy failure" in rec["message"] and rec["error_recipe"] == rec["recipes"][0]


def test_memory_guard_skips():
    rec = run_cell(TOY.get("TOY-MEMORY"), {"m": 10**9, "L": 2}, SMOKE, device="cpu")
    assert rec["verdict"] == "skipped" and "memory guard" in rec["message"] and rec["examples"] == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown profile"):
        run_cell(TOY.get("TOY-HOLDS"), {"m": 64, "L": 2}, "nope", device="cpu")
    with pytest.raises(ValueError, match="device"):
        run_cell(TOY.get("TOY-HOLDS"), {"m": 64, "L": 2}, SMOKE, device="tpu")
    with pytest.raises(ValueError, match="workers"):
        run_profile(SMOKE, "unused", workers=0, registry=TOY, device="cpu")
    with pytest.raises(ValueError, match="unknown claim id 'nope'; known ids: TOY-HOLDS"):
        select_claims("TOY-HOLDS,nope", TOY)


def test_registry_rejects_duplicates_and_is_case_insensitive():
    reg = Registry("x:Y")
    claim = TOY.get("toy-holds")
    reg.register(claim)
    with pytest.raises(ValueError, match="duplicate claim id"):
        reg.register(claim)
    assert reg.get("Toy-Holds") is claim


def test_run_profile_resumes_and_fresh_reruns(tmp_path):
    events = []
    ids = ["TOY-HOLDS", "TOY-RAISES", "TOY-MEMORY"]
    first = run_profile(SMOKE, tmp_path, device="cpu", claims=ids, registry=TOY, report=False,
                        progress=events.append)
    assert first.total == 7 and first.ran == 7 and first.resumed == 0
    assert first.verdict_counts() == {"holds": 4, "fails": 1, "error": 1, "skipped": 1}
    assert [e.kind for e in events][0] == "start" and events[-1].kind == "finish" and events[-1].done == 7
    loaded = load_results(tmp_path)
    assert len(loaded.records) == 7 and loaded.run["profile"] == "smoke"
    assert set(loaded.run["per_claim_wall_s"]) == set(ids)

    second = run_profile(SMOKE, tmp_path, device="cpu", claims=ids, registry=TOY, report=False)
    assert second.resumed == 6 and second.ran == 1  # only the error cell runs again
    third = run_profile(SMOKE, tmp_path, device="cpu", claims=ids, registry=TOY, report=False, resume=False)
    assert third.resumed == 0 and third.ran == 7


def test_run_profile_drops_records_of_another_profile(tmp_path):
    tiny = dataclasses.replace(SMOKE, name="tiny", widths=(8,), lengths=(2,))
    run_profile(tiny, tmp_path, device="cpu", claims=["TOY-HOLDS"], registry=TOY, report=False)
    run_profile(SMOKE, tmp_path, device="cpu", claims=["TOY-HOLDS"], registry=TOY, report=False)
    profiles = {r["profile"] for r in load_results(tmp_path).records}
    assert profiles == {"smoke"}


def test_run_profile_with_two_workers(tmp_path):
    summary = run_profile(SMOKE, tmp_path, device="cpu", workers=2, claims=["TOY-HOLDS", "TOY-FAILS"],
                          registry=TOY, report=False)
    assert summary.ran == 6 and summary.verdict_counts() == {"holds": 4, "fails": 2}
    assert len(load_results(tmp_path).records) == 6


def test_reproduce_from_record_and_from_bare_recipe(tmp_path, capsys):
    rec = run_cell(TOY.get("TOY-OBJ"), {"m": 4, "L": 2}, SMOKE, device="cpu", out_dir=tmp_path)
    assert rec["failing_recipe"] == {"x": 51, "seed": 0}
    path = tmp_path / "results" / "TOY-OBJ" / f"{rec['cell_key']}.json"
    out = reproduce("toy-obj", str(path), registry=TOY, device="cpu")
    assert out.ok is False and out.measured == {"x": 51}
    assert "FAILS" in capsys.readouterr().out
    out = reproduce("TOY-OBJ", '{"x": 7, "seed": 1}', '{"m": 4, "L": 2}', registry=TOY, device="cpu")
    assert out.ok is True
    with pytest.raises(ValueError, match="cell is required"):
        reproduce("TOY-OBJ", '{"x": 7, "seed": 1}', registry=TOY, device="cpu")
    with pytest.raises(ValueError, match="not 'TOY-HOLDS'"):
        reproduce("TOY-HOLDS", str(path), registry=TOY, device="cpu")
    with pytest.raises(ValueError, match="existing JSON file or a JSON object"):
        reproduce("TOY-OBJ", "no/such/file.json", registry=TOY, device="cpu")


def test_claim_max_shrink_caps_the_profile_budget():
    fails = TOY.get("TOY-FAILS")
    full = run_cell(fails, {"m": 64, "L": 2}, SMOKE, device="cpu")
    one = run_cell(dataclasses.replace(fails, max_shrink=1), {"m": 64, "L": 2}, SMOKE, device="cpu")
    assert full["shrink_evaluations"] > 1
    assert one["shrink_evaluations"] <= 1
