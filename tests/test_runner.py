"""run_cell / run_profile / reproduce on the toy claims of tests/toy_claims.py: records, the sequential
test, shrinking (strictly simpler only), seeds, reproduce's guards."""

import dataclasses
import json

import pytest

from claims.profiles import get_profile
from claims.registry import Registry, select_claims
from claims.runner import cell_seed, draw_recipes, reproduce, run_cell, run_profile
from claims.sampling import simplicity_key
from claims.schema import validate_record
from claims.store import load_results
from tests.toy_claims import TOY

SMOKE = get_profile("smoke")


def test_holding_claim_record_fields():
    rec = run_cell(TOY.get("TOY-HOLDS"), {"m": 256, "L": 2}, SMOKE, device="cpu")
    assert validate_record(rec) is None
    assert rec["verdict"] == "holds" and rec["expect"] == "holds" and rec["must_hold"] and not rec["control"]
    # the sequential test stops at its decision: 12 passing examples accept H0 for delta = 0.1
    assert rec["examples"] == 12 and rec["failures"] == 0 and rec["reason"].startswith("H0 accepted")
    assert rec["test"]["test"] == "SPRT" and rec["test"]["delta_1"] == pytest.approx(0.3)
    assert rec["test"]["budget"] == SMOKE.examples and rec["test"]["llr"] <= rec["test"]["lower"]
    assert rec["failure_rate_ci"][1] <= 0.3
    xs = [r["x"] for r in rec["recipes"]]
    assert len(xs) == 12 and rec["margin"] == pytest.approx(max(xs) / 200)
    assert rec["measured"]["x"] == {"mean": pytest.approx(sum(xs) / 12), "min": min(xs), "max": max(xs), "n": 12}
    assert rec["measured"]["tag"] == {"values": ["t"]}
    assert rec["measured_constants"] == {"c": pytest.approx(max(xs) / 100)}
    assert [row["example"] for row in rec["series"]] == [i for i in range(12) for _ in (0, 1)]
    assert rec["seed"] == 0 and rec["seeds"]["draw_seed"] == cell_seed("TOY-HOLDS", {"m": 256, "L": 2})
    assert rec["failing_recipe"] is None and rec["shrunk"] is False
    assert rec["dtype"] == "float64" and rec["worker"]["pid"] > 0
    for key in ("torch", "numpy", "scipy", "hypothesis", "python"):
        assert rec["versions"][key]
    assert rec["device"] == "cpu" and rec["profile"] == "smoke" and rec["duration_s"] >= 0
    json.dumps(rec, allow_nan=True)


def test_draws_are_reproducible_and_differ_between_cells_and_seeds():
    strategy = TOY.get("TOY-HOLDS").strategy({}, SMOKE)
    a = draw_recipes(strategy, 5, cell_seed("X", {"m": 64}))
    assert a == draw_recipes(strategy, 5, cell_seed("X", {"m": 64}))
    assert a != draw_recipes(strategy, 5, cell_seed("X", {"m": 256}))
    assert cell_seed("X", {"m": 64}, 0) != cell_seed("X", {"m": 64}, 1)
    assert len(a) == 5


def test_a_run_seed_draws_fresh_reproducible_evidence():
    claim, cell = TOY.get("TOY-HOLDS"), {"m": 64, "L": 2}
    default = run_cell(claim, cell, SMOKE, device="cpu")
    seeded = run_cell(claim, cell, SMOKE, device="cpu", seed=5)
    again = run_cell(claim, cell, SMOKE, device="cpu", seed=5)
    assert seeded["seed"] == 5 and seeded["recipes"] == again["recipes"] != default["recipes"]


def test_control_cell_fails_after_three_examples_and_is_not_shrunk():
    rec = run_cell(TOY.get("TOY-HOLDS"), {"m": 64, "L": 2, "control": True}, SMOKE, device="cpu")
    assert rec["control"] and rec["expect"] == "fails" and not rec["must_hold"]
    assert rec["verdict"] == "fails" and rec["examples"] == 3 and rec["reason"].startswith("H1 accepted")
    assert rec["failing_recipe"] == rec["recipes"][0]
    assert rec["shrunk"] is False and rec["shrink_evaluations"] == 0
    assert "control" not in rec["params"]


def test_failing_claim_is_shrunk_to_the_minimal_recipe():
    profile = dataclasses.replace(SMOKE, shrink_budget=200)
    rec = run_cell(TOY.get("TOY-FAILS"), {"m": 64, "L": 2}, profile, device="cpu")
    assert rec["verdict"] == "fails" and rec["failures"] == 3
    assert rec["failing_recipe"] == {"x": 10, "seed": 0} and rec["shrunk"] is True
    assert 0 < rec["shrink_evaluations"] <= 200
    assert rec["failing_outcome"]["ok"] is False
    first = rec["recipes"][rec["failing_example"]]
    assert simplicity_key(rec["failing_recipe"]) < simplicity_key(first)


def test_shrunk_is_true_only_when_strictly_simpler():
    # no shrink budget: nothing new is evaluated and the stored recipe is the first failing one
    none = run_cell(TOY.get("TOY-FAILS"), {"m": 64, "L": 2}, dataclasses.replace(SMOKE, shrink_budget=0), device="cpu")
    assert none["shrunk"] is False and none["failing_recipe"] == none["recipes"][none["failing_example"]]
    # a budget too small to make progress: shrinking ran but reached nothing simpler, so shrunk is false
    small = run_cell(TOY.get("TOY-FAILS"), {"m": 64, "L": 2}, dataclasses.replace(SMOKE, shrink_budget=1), device="cpu")
    first = small["recipes"][small["failing_example"]]
    assert small["shrunk"] is (simplicity_key(small["failing_recipe"]) < simplicity_key(first))


def test_simplicity_order_is_shortlex_on_canonical_json():
    assert simplicity_key({"x": 10, "seed": 0}) < simplicity_key({"x": 100, "seed": 0})
    assert simplicity_key({"x": 10, "seed": 0}) < simplicity_key({"x": 11, "seed": 0})
    assert simplicity_key({"seed": 0, "x": 9}) == simplicity_key({"x": 9, "seed": 0})


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
    with pytest.raises(ValueError, match="dtype"):
        run_profile(SMOKE, "unused", dtype="float16", registry=TOY, device="cpu")
    with pytest.raises(ValueError, match="unknown claim id 'nope'; known ids: TOY-HOLDS"):
        select_claims("TOY-HOLDS,nope", TOY)


def test_registry_rejects_duplicates_and_is_case_insensitive():
    reg = Registry("x:Y")
    claim = TOY.get("toy-holds")
    reg.register(claim)
    with pytest.raises(ValueError, match="duplicate claim id"):
        reg.register(claim)
    assert reg.get("Toy-Holds") is claim


def test_run_profile_resumes_error_cells_and_reports_progress(tmp_path):
    events = []
    ids = ["TOY-HOLDS", "TOY-RAISES", "TOY-MEMORY"]
    first = run_profile(SMOKE, tmp_path, device="cpu", claims=ids, registry=TOY, report=False,
                        progress=events.append, warn=lambda _: None)
    assert first.total == 7 and first.ran == 7 and first.resumed == 0
    assert first.verdict_counts() == {"holds": 4, "fails": 1, "inconclusive": 0, "skipped": 1, "error": 1}
    assert [e.kind for e in events][0] == "start" and events[-1].kind == "finish" and events[-1].done == 7
    cells = [e for e in events if e.kind == "cell"]
    assert cells[-1].cost_done == pytest.approx(cells[-1].cost_total) and cells[0].eta_s is not None
    loaded = load_results(tmp_path)
    assert len(loaded.records) == 7 and loaded.run["profile"] == "smoke"
    assert set(loaded.run["per_claim_wall_s"]) == set(ids)
    second = run_profile(SMOKE, tmp_path, device="cpu", claims=ids, registry=TOY, report=False)
    assert second.resumed == 6 and second.ran == 1  # only the error cell runs again


def test_the_facade_builds_the_report_and_the_session_does_not(tmp_path):
    from claims import session

    summary = run_profile(SMOKE, tmp_path, device="cpu", claims=["TOY-HOLDS"], registry=TOY, warn=lambda _: None)
    assert summary.report_error is None and summary.report_path == tmp_path / "index.html"
    assert "TOY-HOLDS" in summary.report_path.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="claims.runner.run_profile"):
        session.run_profile(SMOKE, tmp_path / "b", device="cpu", claims=["TOY-HOLDS"], registry=TOY, report=True)
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_two_workers_give_the_records_of_one(tmp_path):
    one = run_profile(SMOKE, tmp_path / "one", device="cpu", claims=["TOY-HOLDS", "TOY-FAILS"], registry=TOY,
                      report=False)
    two = run_profile(SMOKE, tmp_path / "two", device="cpu", workers=2, claims=["TOY-HOLDS", "TOY-FAILS"],
                      registry=TOY, report=False)
    assert two.ran == 6 and two.meta["executor"]["kind"] == "pool"
    key = lambda s: {(r["claim"], r["cell_key"]): (r["verdict"], r["recipes"], r["measured"]) for r in s.records}  # noqa: E731
    assert key(one) == key(two)


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


def test_claim_max_examples_caps_the_budget():
    slow = dataclasses.replace(TOY.get("TOY-HOLDS"), max_examples=5)
    rec = run_cell(slow, {"m": 64, "L": 2}, SMOKE, device="cpu")
    assert rec["verdict"] == "inconclusive" and rec["examples"] == 5 and rec["reason"].startswith("budget")


def test_draws_do_not_depend_on_the_modules_a_process_imported(tmp_path, monkeypatch):
    # hypothesis's stock provider mixes in integer constants harvested from every local module imported
    # so far, so the same seed drew other recipes in a worker than in the controller
    import importlib

    strategy = TOY.get("TOY-HOLDS").strategy({}, SMOKE)
    before = draw_recipes(strategy, 40, 123)
    (tmp_path / "module_with_numbers.py").write_text("X = [17, 4242, 31337, 99, 12345, 777, 65000, 3, 42, 1000]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("module_with_numbers")
    assert draw_recipes(strategy, 40, 123) == before
