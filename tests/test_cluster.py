"""Runs on a shared Dask cluster, on real schedulers and worker processes bound to 127.0.0.1:

(a) TLS: a scheduler and a worker that speak only ``tls://`` with certificates of a CA made here
    (openssl); ``rnnclaims run --scheduler tls://... --tls-ca-file --tls-cert --tls-key`` succeeds and
    its cells run on that worker; a client without certificates, or with certificates of another CA, is
    refused; missing or malformed files are one line naming the option; a plain tcp:// address to
    another machine draws a one-line warning, a loopback one does not;
(b) one code base per run: a worker that reports another torch version stops the run before the first
    cell with one line naming that worker and the field; ``--allow-mixed-workers`` runs and records the
    lines in ``_run.json``; a worker that joins during the run is refused on its first cell;
(c) memory limits: on two workers with limits of 1.5 GiB and 3 GiB, cells that fit neither are recorded
    ``skipped`` without being sent, cells that fit only the larger run only there.

Every test starts worker processes (seconds each on a 2-core machine): the module is marked slow.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import time

import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
from distributed import Client  # noqa: E402
from distributed.security import Security  # noqa: E402

from claims.cli import main  # noqa: E402
from claims.executors import DaskExecutor  # noqa: E402
from claims.remote import plain_tcp_risk  # noqa: E402
from claims.store import load_results  # noqa: E402
from claims.session import run_profile  # noqa: E402
from claims.workercheck import MixedWorkers  # noqa: E402
from tests.cluster_toys import MEM, OtherTorch, loopback_cluster  # noqa: E402
from tests.toy_claims import TOY  # noqa: E402

pytestmark = pytest.mark.slow

TOYS = "tests.toy_claims:TOY"
OTHER_TORCH = "0.0.0+other"


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------------------------------
# certificates: a CA, one certificate it signs for every node, and an intruder with its own CA


def _openssl(folder, *args):
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)


def _ca_and_node(folder, name):
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(folder, "req", "-x509", *ec, "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", "-days", "2",
             "-subj", f"/CN={name} test CA")
    _openssl(folder, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext")
    return {"ca": str(folder / f"{name}-ca.pem"), "cert": str(folder / f"{name}.pem"),
            "key": str(folder / f"{name}.key")}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificates")
    folder = tmp_path_factory.mktemp("certs")
    return {"cluster": _ca_and_node(folder, "cluster"), "intruder": _ca_and_node(folder, "intruder")}


def _security(files):
    return Security(tls_ca_file=files["ca"], require_encryption=True,
                    **{f"tls_{role}_{part}": files[part] for role in ("client", "scheduler", "worker")
                       for part in ("cert", "key")})


@pytest.fixture(scope="module")
def tls_cluster(certs):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNCLAIMS_TOY_SLEEP", "0")  # inherited by the worker process
        with loopback_cluster(1, protocol="tls://", security=_security(certs["cluster"])) as cluster:
            yield cluster


def _tls_flags(files):
    return ["--tls-ca-file", files["ca"], "--tls-cert", files["cert"], "--tls-key", files["key"]]


# --------------------------------------------------------------------------------------------------
# (a) TLS


def test_a_run_with_the_cluster_certificates_succeeds_on_its_worker(tls_cluster, certs, tmp_path):
    address = tls_cluster.scheduler_address
    assert address.startswith("tls://127.0.0.1:")
    code, out, err = _cli("run", "--profile", "smoke", "--registry", TOYS, "--claims", "TOY-HOLDS,TOY-FAILS",
                          "--device", "cpu", "--no-report", "--out", str(tmp_path / "out"), "--scheduler", address,
                          *_tls_flags(certs["cluster"]))
    assert code == 0, err
    assert "warning" not in err
    loaded = load_results(tmp_path / "out", TOY.ids())
    assert loaded.invalid == [] and len(loaded.records) == len(TOY.get("TOY-HOLDS").cells(_smoke())) + 1
    assert {r["verdict"] for r in loaded.records} == {"holds", "fails"}
    with Client(address, security=_security(certs["cluster"])) as client:
        worker_pids = set(client.run(os.getpid).values())
    assert {r["worker"]["pid"] for r in loaded.records} <= worker_pids and os.getpid() not in worker_pids
    assert loaded.run["executor"] == {"kind": "dask", "workers": 1, "address": address,
                                      "transport": "tls (mutual certificates)"}


def test_the_certificates_can_come_from_dask_configuration(tls_cluster, certs, tmp_path):
    files = certs["cluster"]
    with dask.config.set({"distributed.comm.tls.ca-file": files["ca"],
                          "distributed.comm.tls.client.cert": files["cert"],
                          "distributed.comm.tls.client.key": files["key"]}):
        summary = run_profile("smoke", tmp_path / "out", registry=TOYS, claims="TOY-FAILS", device="cpu",
                              report=False, scheduler=tls_cluster.scheduler_address)
    assert summary.ran == summary.total == 1 and summary.records[0]["verdict"] == "fails"


def _smoke():
    from claims.profiles import get_profile

    return get_profile("smoke")


def test_clients_without_the_cluster_certificates_are_refused(tls_cluster, certs, tmp_path):
    address = tls_cluster.scheduler_address
    clients_before = set(tls_cluster.scheduler.clients)
    # no certificates at all: refused before any connection, one line naming the options
    code, out, err = _cli("run", "--profile", "smoke", "--registry", TOYS, "--device", "cpu", "--no-report",
                          "--out", str(tmp_path / "a"), "--scheduler", address)
    assert code == 2 and err.count("\n") == 1 and "no TLS certificates" in err and "--tls-ca-file" in err, err
    # a client of another CA: the handshake fails until the connect timeout
    t0 = time.perf_counter()
    with pytest.raises(OSError), dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        Client(address, security=_security(certs["intruder"]), timeout="2s")
    assert time.perf_counter() - t0 < 30
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code, out, err = _cli("run", "--profile", "smoke", "--registry", TOYS, "--device", "cpu", "--no-report",
                              "--out", str(tmp_path / "b"), "--scheduler", address, *_tls_flags(certs["intruder"]))
    errors = [line for line in err.splitlines() if line.startswith("rnnclaims:")]
    assert code == 3 and len(errors) == 1 and f"cannot connect to the scheduler at {address}" in errors[0], err
    # plain tcp to the TLS port: refused too
    with pytest.raises(OSError):
        Client(address.replace("tls://", "tcp://"), timeout="2s")
    assert set(tls_cluster.scheduler.clients) == clients_before  # none of them got in
    assert not list((tmp_path / "b" / "results").glob("TOY-*/*.json"))


@pytest.mark.parametrize("case", ["missing cert", "missing ca", "key without cert", "not PEM", "tcp address",
                                  "no scheduler"])
def test_bad_tls_input_is_one_line_naming_the_option(certs, tmp_path, case):
    files = dict(certs["cluster"])
    address = "tls://127.0.0.1:9"
    if case == "missing cert":
        flags, want = ["--tls-ca-file", files["ca"], "--tls-cert", str(tmp_path / "nope.pem")], "--tls-cert"
    elif case == "missing ca":
        flags, want = ["--tls-ca-file", str(tmp_path / "nope.pem"), "--tls-cert", files["cert"]], "--tls-ca-file"
    elif case == "key without cert":
        flags, want = ["--tls-ca-file", files["ca"], "--tls-key", files["key"]], "--tls-key"
    elif case == "not PEM":
        (tmp_path / "junk.pem").write_text("not a certificate\n")
        flags, want = ["--tls-ca-file", str(tmp_path / "junk.pem"), "--tls-cert", files["cert"],
                       "--tls-key", files["key"]], "--tls-ca-file"
    elif case == "tcp address":
        flags, want, address = _tls_flags(files), "--tls-ca-file needs a tls:// scheduler address", "tcp://127.0.0.1:9"
    else:
        flags, want, address = _tls_flags(files), "--tls-ca-file needs --scheduler", None
    scheduler = ["--scheduler", address] if address else []
    code, out, err = _cli("run", "--profile", "smoke", "--registry", TOYS, "--no-report", "--out",
                          str(tmp_path / "out"), *scheduler, *flags)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("rnnclaims: error: ") and want in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()  # refused before the run began


def test_plain_tcp_to_another_machine_warns_in_one_line():
    for address in ("tcp://10.1.2.3:8786", "10.1.2.3:8786", "tcp://192.0.2.7:8786"):
        line = plain_tcp_risk(address)
        assert line and "\n" not in line and "run code on its workers" in line and "tls://" in line
    for address in ("tcp://127.0.0.1:8786", "127.0.0.1:8786", "tcp://localhost:8786", "tcp://[::1]:8786",
                    "tls://10.1.2.3:8786"):
        assert plain_tcp_risk(address) is None, address
    lines = []
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}), pytest.raises(OSError):
        DaskExecutor(address="tcp://192.0.2.7:8786", warn=lines.append)  # TEST-NET-1: nobody answers
    assert lines == [plain_tcp_risk("tcp://192.0.2.7:8786")]


# --------------------------------------------------------------------------------------------------
# (b) one code base per run


@pytest.fixture
def two_workers(monkeypatch):
    monkeypatch.setenv("RNNCLAIMS_TOY_SLEEP", "0")
    with loopback_cluster(2) as cluster:
        yield cluster


def _other_torch(cluster, names):
    with Client(cluster.scheduler_address) as client:
        client.register_plugin(OtherTorch(OTHER_TORCH, names), name="other-torch")
        from claims.environment import environment_info

        reported = client.run(lambda: environment_info()["versions"]["torch"])
        workers = {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}
    return reported, workers


def test_a_worker_that_reports_another_torch_stops_the_run_before_the_first_cell(two_workers, tmp_path):
    import torch

    reported, workers = _other_torch(two_workers, {1})
    assert sorted(reported.values()) == sorted([OTHER_TORCH, torch.__version__])  # the plugin took effect
    code, out, err = _cli("run", "--profile", "smoke", "--registry", TOYS, "--claims", "TOY-HOLDS", "--device", "cpu",
                          "--no-report", "--out", str(tmp_path / "out"), "--scheduler", two_workers.scheduler_address)
    lines = [line for line in err.splitlines() if line.startswith("rnnclaims:")]
    assert code == 2 and len(lines) == 2, err
    assert lines[0] == ("rnnclaims: error: 1 of 2 workers differ from this controller; the run is stopped "
                        "(--allow-mixed-workers runs anyway)")
    assert lines[1] == (f"rnnclaims: error: worker {workers[1]}: torch {OTHER_TORCH} "
                        f"(controller: {torch.__version__})")
    assert load_results(tmp_path / "out", TOY.ids()).records == []  # no cell ran

    # with --allow-mixed-workers the run goes on, and _run.json says so
    code, out, err = _cli("run", "--profile", "smoke", "--registry", TOYS, "--claims", "TOY-HOLDS", "--device", "cpu",
                          "--no-report", "--out", str(tmp_path / "out"), "--scheduler", two_workers.scheduler_address,
                          "--allow-mixed-workers")
    assert code == 0, err
    loaded = load_results(tmp_path / "out", TOY.ids())
    executor = loaded.run["executor"]
    assert executor["allow_mixed_workers"] is True
    assert executor["mixed_workers"] == [lines[1].removeprefix("rnnclaims: error: ")]  # that worker, once
    assert loaded.records and {r["versions"]["torch"] for r in loaded.records} <= {OTHER_TORCH, torch.__version__}
    for r in loaded.records:  # the records of the differing worker carry its version and say so
        assert (r["versions"]["torch"] == OTHER_TORCH) == bool(r["worker"].get("differs")), r["worker"]


def test_a_worker_missing_a_catalogue_is_named(two_workers, tmp_path):
    """The run needs TOY-MEM (tests.cluster_toys:MEM): a registry spec the workers cannot load differs."""
    from claims.workercheck import Expected, check_workers

    expected = Expected.of_run("tests.cluster_toys:MEM", ["TOY-MEM"], "cpu", allow_mixed=False)
    with Client(two_workers.scheduler_address) as client:
        assert check_workers(client, expected)[:2] == ([], 2)

        def hide():  # the worker's installation lacks the module behind that catalogue
            import sys

            sys.modules["tests.cluster_toys"] = None

        client.run(hide, workers=[sorted(client.scheduler_info()["workers"])[0]])
        lines, asked, _ = check_workers(client, expected)
    assert asked == 2 and len(lines) == 1
    assert "claims registry 'tests.cluster_toys:MEM' does not load" in lines[0]
    assert "(controller: all 1 present)" in lines[0]


def test_a_worker_that_joins_during_the_run_is_refused_on_its_first_cell(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("RNNCLAIMS_TOY_SLEEP", "0.1")  # 12 cells of >= 12 examples: >= 1.2 s per cell
    with loopback_cluster(1) as cluster:
        _other_torch(cluster, {1})  # only the worker named 1, which does not exist yet
        joined = {}

        def progress(event):
            if event.kind == "cell" and not joined:
                cluster.scale(2)
                with Client(cluster.scheduler_address) as client:
                    client.wait_for_workers(2, timeout=60)
                    joined.update({w["name"]: a for a, w in client.scheduler_info()["workers"].items()})

        with pytest.raises(MixedWorkers) as info:
            run_profile("smoke", tmp_path / "out", registry=TOY, claims="TOY-SLOW", device="cpu", report=False,
                        scheduler=cluster.scheduler_address, progress=progress)
    assert joined and len(info.value.lines) == 1 and info.value.lines[0].startswith(f"worker {joined[1]}: ")
    # (a commit made in this checkout since the run began is named too: the new worker reads the checkout now)
    assert f"torch {OTHER_TORCH} (controller: {torch.__version__})" in info.value.lines[0]
    assert info.value.headline.startswith("1 worker(s) that joined during the run differ from this controller")
    records = load_results(tmp_path / "out", TOY.ids()).records
    assert records and len(records) < 12  # the cells done before it joined are kept; the run stopped
    assert {r["versions"]["torch"] for r in records} == {torch.__version__}


# --------------------------------------------------------------------------------------------------
# (c) cells sent where they fit


@pytest.fixture
def small_and_large(monkeypatch):
    """Two worker processes (Nanny) of memory limits 1.5 GiB and 3 GiB on a loopback scheduler."""
    from distributed import Nanny, Scheduler, SpecCluster

    def worker(limit):
        return {"cls": Nanny, "options": {"nthreads": 1, "memory_limit": limit, "host": "127.0.0.1"}}

    cluster = SpecCluster(scheduler={"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard": False}},
                          workers={"small": worker("1.5GiB"), "large": worker("3GiB")}, silence_logs=logging.ERROR)
    try:
        yield cluster
    finally:
        cluster.close()


def test_cells_go_only_to_workers_whose_memory_limit_holds_them(small_and_large, tmp_path):
    address = small_and_large.scheduler_address
    with Client(address) as client:
        info = client.scheduler_info()["workers"]
        pids = client.run(os.getpid)
    pid_of = {w["name"]: pids[a] for a, w in info.items()}
    assert {w["name"]: w["memory_limit"] for w in info.values()} == {"small": 3 * 2**29, "large": 3 * 2**30}
    summary = run_profile("smoke", tmp_path / "out", registry=MEM, device="cpu", report=False, scheduler=address)
    by_need: dict[int, list[dict]] = {}
    for r in summary.records:
        by_need.setdefault(r["cell"]["need_mib"], []).append(r)
    assert {k: len(v) for k, v in by_need.items()} == {64: 4, 1536: 6, 65536: 2}
    # 1.5 GiB > 0.9 x 1.5 GiB: only the large worker may take it
    assert {r["worker"]["pid"] for r in by_need[1536]} == {pid_of["large"]}
    assert all(r["verdict"] == "holds" for r in by_need[1536] + by_need[64])
    # 64 GiB fits neither: skipped without being sent
    for r in by_need[65536]:
        assert r["verdict"] == "skipped" and r["worker"]["pid"] is None
        assert r["reason"] == ("memory guard: needs about 64.00 GiB, more than 90% of every worker's memory "
                               "limit (largest 3.00 GiB); not sent")
    meta = json.loads((summary.results_dir / "_run.json").read_text())
    assert {w["pid"] for w in meta["workers"]} <= set(pid_of.values())
    assert load_results(tmp_path / "out", MEM.ids()).invalid == []
