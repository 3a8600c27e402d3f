"""Several catalogues at once (claims.registry), entry-point catalogues, per-claim settings and
third-party profiles (claims.profiles.register_profile)."""

from __future__ import annotations

import dataclasses
import io
from importlib import metadata

import pytest

import claims.profiles as profiles
import claims.registry as registry
from claims.profiles import Profile, get_profile, register_profile
from claims.registry import resolve_registry, select_claims
from tests.toy_claims import TOY
from tests.toy_claims_extra import EXTRA

BOTH = "claims.catalogue,tests.toy_claims:TOY"

#: the SPEC's section 4 order, which the built-in catalogue registers its claims in
CATALOGUE_ORDER = ("FWD", "BWD", "GRAD", "NTK-ID", "NTK-CONV", "NTK-PD", "NTK-PD-M", "PERT", "LAZY",
                   "GEN-ADD", "GEN-KRR", "CPLX-ADD", "CPLX-NVAR", "RAND-LABEL")


def test_two_catalogues_at_once():
    reg = resolve_registry(BOTH)
    ids = reg.ids()
    assert ids == list(CATALOGUE_ORDER) + TOY.ids()  # the built-in order first, then the toy registry's
    assert reg.get("fwd") is resolve_registry("claims.catalogue").get("FWD")  # the same claim objects
    assert reg.get("TOY-HOLDS") is TOY.get("TOY-HOLDS")
    assert [c.id for c in select_claims("TOY-FAILS,FWD", reg)] == ["FWD", "TOY-FAILS"]  # registration order
    # the spec lets another process rebuild the same set (the join cache is per process)
    assert reg.spec == BOTH
    assert resolve_registry(BOTH) is reg


def test_a_catalogue_orders_its_own_claims_by_registering_them():
    from tests.toy_claims_extra import _toy

    mine = registry.Registry("tests.test_registry:MINE")
    for cid in ("ZED", "ALPHA", "MID"):
        mine.register(_toy(cid))
    assert mine.ids() == ["ZED", "ALPHA", "MID"]  # not sorted, not re-ranked
    assert [c.id for c in select_claims("MID,ZED", mine)] == ["ZED", "MID"]


def test_the_engine_imports_no_report_and_names_no_claim():
    """Below the front ends (cli, runner, audit) nothing in claims/ imports the reports package, and no
    engine module names a claim of the catalogue: the order and everything else comes from the registry."""
    import ast
    from pathlib import Path

    front_ends = {"cli.py", "runner.py", "audit.py"}
    for path in sorted((Path(registry.__file__).parent).glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        if path.name not in front_ends:
            assert not {m for m in modules if m.split(".")[0] == "reports"}, f"{path.name} imports reports"
        named = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in CATALOGUE_ORDER}
        assert not named, f"{path.name} names the claims {sorted(named)}"


def test_joined_spec_rebuilds_without_the_cache(monkeypatch):
    first = resolve_registry(BOTH)
    monkeypatch.setattr(registry, "_JOINED", {})  # what a fresh worker process sees
    again = resolve_registry(first.spec)
    assert again is not first and again.ids() == first.ids()
    # blanks, repeats and spaces around the parts do not change the set
    assert resolve_registry(" claims.catalogue , tests.toy_claims:TOY ,, tests.toy_claims:TOY").ids() == first.ids()


@pytest.mark.parametrize("spec, first, second, cid", [
    ("tests.toy_claims:TOY,tests.toy_claims_extra:CLASH_TOY", "tests.toy_claims:TOY",
     "tests.toy_claims_extra:CLASH_TOY", "TOY-HOLDS"),
    ("claims.catalogue,tests.toy_claims_extra:CLASH_BUILTIN", "claims.catalogue",
     "tests.toy_claims_extra:CLASH_BUILTIN", "FWD"),
    ("default,tests.toy_claims_extra:CLASH_BUILTIN", "claims.catalogue",
     "tests.toy_claims_extra:CLASH_BUILTIN", "FWD"),
])
def test_an_id_clash_between_catalogues_is_an_error_naming_both(spec, first, second, cid, monkeypatch):
    monkeypatch.setattr(registry, "entry_point_specs", lambda: [])
    with pytest.raises(ValueError) as info:
        resolve_registry(spec)
    text = str(info.value)
    assert repr(cid) in text and repr(first) in text and repr(second) in text
    assert "\n" not in text


def test_a_clash_through_the_cli_is_one_line(capsys):
    from claims.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["list", "--registry", "tests.toy_claims:TOY,tests.toy_claims_extra:CLASH_TOY"],
                stdout=out, stderr=err)
    assert code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnclaims: error: ")
    assert "tests.toy_claims:TOY" in lines[0] and "tests.toy_claims_extra:CLASH_TOY" in lines[0]


def test_bad_specs_name_the_spec():
    for spec, needle in (("no_such_module_xyz:REG", "cannot import"), ("tests.toy_claims:NOPE", "is not a"),
                         ("tests.toy_claims", "package.module:NAME")):
        with pytest.raises(ValueError, match=needle) as info:
            resolve_registry(spec)
        assert spec in str(info.value)


# --------------------------------------------------------------------------------------------------
# entry points


def test_entry_point_catalogue_joins_the_default_spec(monkeypatch):
    monkeypatch.setattr(registry, "entry_point_specs", lambda: ["tests.toy_claims_extra:EXTRA"])
    monkeypatch.delenv(registry.ENV_REGISTRY, raising=False)
    for spec in ("default", None):
        reg = resolve_registry(spec)
        assert reg.ids() == list(CATALOGUE_ORDER) + ["TOY-EXTRA"]
        assert reg.get("TOY-EXTRA") is EXTRA.get("TOY-EXTRA")
        assert reg.spec == "default"  # a worker re-expands "default" with its own installed plugins
    # the built-in catalogue alone does not pick it up
    assert "TOY-EXTRA" not in resolve_registry("claims.catalogue")
    # the default spec beside another catalogue
    assert resolve_registry("default,tests.toy_claims:TOY").ids() == list(CATALOGUE_ORDER) + ["TOY-EXTRA"] + TOY.ids()


def test_entry_points_are_read_from_the_group(monkeypatch):
    """Simulate an installed package: importlib.metadata.entry_points answers the group."""
    asked = []
    fake = [metadata.EntryPoint(name="extra", value="tests.toy_claims_extra:EXTRA", group=registry.ENTRY_POINT_GROUP),
            metadata.EntryPoint(name="extra-again", value=" tests.toy_claims_extra:EXTRA ",
                                group=registry.ENTRY_POINT_GROUP)]

    def entry_points(*, group=None, **kw):
        asked.append(group)
        return [ep for ep in fake if ep.group == group]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    assert registry.entry_point_specs() == ["tests.toy_claims_extra:EXTRA"]  # deduplicated, stripped
    assert asked == ["rnn_claims.catalogues"]
    assert "TOY-EXTRA" in resolve_registry("default")


def test_a_broken_entry_point_is_named(monkeypatch):
    monkeypatch.setattr(registry, "entry_point_specs", lambda: ["no_such_plugin_pkg_xyz.claims:REGISTRY"])
    with pytest.raises(ValueError) as info:
        resolve_registry("default")
    assert "no_such_plugin_pkg_xyz.claims:REGISTRY" in str(info.value) and "cannot import" in str(info.value)
    assert "FWD" in resolve_registry("claims.catalogue")  # the built-in catalogue alone still resolves


def test_entry_point_claims_show_in_list(monkeypatch):
    from claims.cli import main

    monkeypatch.setattr(registry, "entry_point_specs", lambda: ["tests.toy_claims_extra:EXTRA"])
    monkeypatch.delenv(registry.ENV_REGISTRY, raising=False)
    out, err = io.StringIO(), io.StringIO()
    assert main(["list"], stdout=out, stderr=err) == 0, err.getvalue()
    ids = [line.split()[0] for line in out.getvalue().splitlines() if line and not line.startswith(" ")]
    assert ids == list(CATALOGUE_ORDER) + ["TOY-EXTRA"]


# --------------------------------------------------------------------------------------------------
# settings and profiles


def test_settings_for_raises_on_an_unknown_profile_naming_the_known_ones():
    fwd = resolve_registry("claims.catalogue").get("FWD")
    assert fwd.settings_for("smoke") is fwd.settings["smoke"]
    assert fwd.settings_for(get_profile("quick")) is fwd.settings["quick"]
    with pytest.raises(ValueError) as info:
        fwd.settings_for("huge")
    text = str(info.value)
    assert "FWD" in text and "'huge'" in text
    for name in fwd.settings:
        assert name in text
    bare = TOY.get("TOY-HOLDS")
    with pytest.raises(ValueError, match=r"TOY-HOLDS has no settings for profile 'smoke'; it knows: \(none\)"):
        bare.settings_for("smoke")


def test_every_builtin_claim_with_settings_refuses_unknown_profiles():
    for claim in resolve_registry("claims.catalogue").claims():
        if claim.settings:
            with pytest.raises(ValueError, match="no settings for profile"):
                claim.settings_for("no-such-profile")


def _tiny(name="tiny-test", examples=5):
    return Profile(name=name, widths=(4,), lengths=(2,), regimes=("unit",), examples=examples, shrink_budget=0,
                   n_default=2, d_default=2, n_max=4, description="a test profile")


def test_register_profile(monkeypatch):
    monkeypatch.setattr(profiles, "PROFILES", dict(profiles.PROFILES))  # restored after the test
    with pytest.raises(ValueError, match="unknown profile 'tiny-test'"):
        get_profile("tiny-test")
    tiny = register_profile(_tiny())
    assert get_profile("tiny-test") is tiny and get_profile(" TINY-test ") is tiny
    assert register_profile(_tiny()) == tiny  # the same settings again: fine
    with pytest.raises(ValueError, match="already registered with other settings"):
        register_profile(_tiny(examples=6))
    with pytest.raises(ValueError, match="already registered"):
        register_profile(dataclasses.replace(get_profile("smoke"), examples=1))
    with pytest.raises(TypeError, match="Profile"):
        register_profile({"name": "x"})
    assert "tiny-test" in profiles.PROFILES and profiles.PROFILE_NAMES == ("smoke", "quick", "standard", "full")
    with pytest.raises(ValueError) as info:
        get_profile("nope")
    assert "tiny-test" in str(info.value)  # the allowed list names registered profiles


def test_a_registered_profile_runs_a_claim_that_knows_it(monkeypatch, tmp_path):
    """A third-party claim brings its own settings for a third-party profile."""
    from claims.session import run_profile
    from tests.toy_claims_extra import SETTINGS_TOY

    monkeypatch.setattr(profiles, "PROFILES", dict(profiles.PROFILES))
    register_profile(_tiny())
    claim = SETTINGS_TOY.get("TOY-SET")
    assert claim.settings_for("tiny-test") == {"k": 3}
    summary = run_profile("tiny-test", tmp_path, registry=SETTINGS_TOY, device="cpu", report=False)
    assert [(r["profile"], r["params"], r["verdict"]) for r in summary.records] == [
        ("tiny-test", {"m": 4, "L": 2, "k": 3}, "inconclusive")]
    # the profile's example budget (5) is below the 12 passing examples a "holds" needs
    assert summary.records[0]["test"]["budget"] == 5 and summary.records[0]["examples"] == 5
    assert summary.records[0]["reason"].startswith("budget")
    # under a profile it does not know, the claim's cells fail loudly: an error record naming the profile
    other = run_profile("smoke", tmp_path / "smoke", registry=SETTINGS_TOY, device="cpu", report=False)
    assert [r["verdict"] for r in other.records] == ["error"]
    assert "no settings for profile 'smoke'" in other.records[0]["message"]


def test_claim_ids_must_be_upper_case_so_a_clash_cannot_hide_behind_case():
    with pytest.raises(ValueError, match="upper-case"):
        dataclasses.replace(TOY.get("TOY-HOLDS"), id="toy-holds")


def test_from_module_reads_the_standard_names_and_fields_win():
    """Claim.from_module takes cells, strategy, evaluate, must_hold, cost, SETTINGS and figure from the
    module by name, leaves the fields the module does not define at their defaults, and lets the keyword
    fields override; every built-in claim module's functions are its claim's."""
    import types

    from claims.base import MODULE_NAMES, Claim
    from claims.catalogue import ntk_pd

    mod = types.ModuleType("toy_from_module")
    mod.cells = lambda profile: [{"L": 2}]
    mod.strategy = lambda cell, profile: None
    mod.evaluate = lambda cell, recipe, ctx: None
    mod.must_hold = lambda cell, profile: False
    mod.SETTINGS = {"smoke": {"n": 1}}
    mod.figure = lambda claim_id, records, profile: None
    prose = dict(id="TOY-MOD", title="t", operationalizes="o", statement="s", pass_rule="p",
                 negative_control="n", expected="e", axes=("L",), declared={})
    claim = Claim.from_module(mod, **prose)
    assert (claim.cells, claim.strategy, claim.evaluate, claim.must_hold) == (mod.cells, mod.strategy,
                                                                             mod.evaluate, mod.must_hold)
    assert claim.settings == mod.SETTINGS and claim.figures == (mod.figure,)
    assert claim.search is None and claim.cost({"L": 2}, None) == 1.0  # not in the module: the defaults
    other = lambda cell, profile: True  # noqa: E731
    assert Claim.from_module(mod, **prose, must_hold=other, figures=()).must_hold is other
    for field, attr in MODULE_NAMES.items():
        if hasattr(ntk_pd, attr):
            want = (getattr(ntk_pd, attr),) if field == "figures" else getattr(ntk_pd, attr)
            assert getattr(ntk_pd.CLAIM, field) == want, field
