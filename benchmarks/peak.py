"""The machine's measured peak, and every kernel's share of it.

In one process: the float64 and float32 matmul peak (an s x s matmul, best of N, s = 4096 by default)
and the copy bandwidth (a large array and a cache-sized one), measured before and after the kernels;
then each kernel's best time, its achieved GFLOP/s and its share of the peak of its dtype (the larger
of the two peak measurements, so a disturbed machine makes the shares look worse, never better), and
the same kernel in the straightforward reference implementation (rnn_core.reference) run on the same
inputs, as a ratio and a max relative difference.

Flops are model flops, 2 m n k per (m x n) @ (n x k) matmul, counting only the products the result needs:
- forward: L - 1 recurrence matmuls (h_0 = 0, so step 1 is A X_1 only): 2 n (L-1) m^2;
- backward_deltas: delta_1..delta_{L-1} from delta_{l+1}: 2 n (L-1) m^2;
- empirical_ntk (X2 = X): forward 2 n (L-1) m^2, backward to delta_2 2 n (L-2) m^2, and two symmetric
  Grams of (n (L-1)) x m matrices, N^2 m each with N = n (L-1) (the symmetric half of 2 N^2 m);
- train_gd with S steps: S + 2 forwards (f(W_0), and the loss at t = 0..S), S backwards to delta_2 and
  S gradient matmuls 2 m^2 n (L-1); reported per step;
- infinite_ntk: no matmul to speak of (d is small); it is bounded by elementwise passes over
  n x n temporaries held in cache, so it is reported as bytes moved (8 bytes per entry per pass, the
  pass count of rnn_core.kernels._recursion) per second against the measured copy bandwidth.
Input projections A X (2 n L d m) and elementwise work are not counted.

    python -m benchmarks.peak [--quick] [--repeats 5] [--peak-size 4096] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

import rnn_core
from rnn_core import reference as ref
from benchmarks.common import Table, add_out_argument, save_run, sync

NTK_SIZES = [(64, 32, 1024), (64, 32, 2048)]
TRAIN_SIZES = [(256, 16, 1024)]
INF_SIZES = [(2048, 32)]
QUICK_NTK_SIZES = [(8, 4, 64), (16, 8, 128)]
QUICK_TRAIN_SIZES = [(32, 4, 128)]
QUICK_INF_SIZES = [(256, 8)]
D_IN = 4
TRAIN_STEPS = 5
#: elementwise passes over an (rows x n2) float64 temporary per step of rnn_core.kernels._recursion
#: (outer 1, addmm 2, div 3, clamp 2, arccos 2, sin 2, Kdot 4, A update 6, sin/pi 2, addcmul 4, K*norm 3)
INF_PASSES_PER_STEP = 31


def best_of(fn, device, repeats: int, warmup: int = 1):
    """(best wall time of ``repeats`` calls after ``warmup`` untimed ones, last result)."""
    result = None
    for _ in range(warmup):
        result = fn()
    best = math.inf
    for _ in range(repeats):
        best = min(best, _timed(fn, device)[0])
    return best, result


def _timed(fn, device):
    sync(device)
    t0 = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - t0, result


def _matmul_job(device, dtype, size: int):
    """A call doing one (size x size) @ (size x size) product: 2 size^3 flops."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen, dtype=dtype).to(device)
    b = torch.randn(size, size, generator=gen, dtype=dtype).to(device)
    c = torch.empty_like(a)
    return lambda: torch.mm(a, b, out=c), 2.0 * size**3


def _copy_job(device, nbytes: int):
    """A call copying float64 arrays of ``nbytes`` (many times when small): bytes read + written."""
    src = torch.ones(nbytes // 8, dtype=torch.float64, device=device)
    dst = torch.empty_like(src)
    inner = max(1, (64 << 20) // nbytes)  # small arrays: many copies per timing so the timer resolves them

    def run():
        for _ in range(inner):
            dst.copy_(src)

    return run, 2.0 * nbytes * inner


class RoundRobin:
    """Timed calls measured in rounds: every call once per round, the best time of each over all rounds.

    On a shared machine a burst of load hits whatever runs at that moment; spreading each call's samples
    over the whole run (instead of timing it N times in a row) gives every call the same chance to meet
    a quiet moment, the peak measurements included.
    """

    def __init__(self, device):
        self.device = device
        self.jobs: dict[str, object] = {}
        self.times: dict[str, list[float]] = {}
        self.first: dict[str, object] = {}

    def add(self, name: str, fn) -> None:
        self.jobs[name] = fn
        self.times[name] = []

    def run(self, rounds: int) -> None:
        for name, fn in self.jobs.items():  # warm-up round: untimed, keeps each call's result
            self.first[name] = fn()
        for _ in range(rounds):
            for name, fn in self.jobs.items():
                self.times[name].append(_timed(fn, self.device)[0])
        self.first = {k: v for k, v in self.first.items() if v is not None}

    def best(self, name: str) -> float:
        return min(self.times[name])

    def median(self, name: str) -> float:
        ts = sorted(self.times[name])
        return ts[len(ts) // 2]


def _inputs(n, L, m, device, dtype):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, L, D_IN, generator=gen, dtype=torch.float64)
    X = (X / X.norm(dim=2, keepdim=True)).to(device)
    y = torch.randn(n, generator=gen, dtype=torch.float64).to(device)
    return rnn_core.init_params(m, D_IN, seed=0, device=device, dtype=dtype), X, y


def _rel(a, b) -> float:
    a, b = a.double(), b.double()
    den = float(b.abs().max())
    return float((a - b).abs().max()) / den if den > 0 else float((a - b).abs().max())


def flops_forward(n, L, m):
    return 2 * n * (L - 1) * m * m


def flops_backward(n, L, m):
    return 2 * n * (L - 1) * m * m


def flops_ntk(n, L, m):
    N = n * (L - 1)
    return 2 * n * (L - 1) * m * m + 2 * n * max(L - 2, 0) * m * m + 2 * N * N * m


def flops_train(n, L, m, steps):
    fwd = 2 * n * (L - 1) * m * m
    step = 2 * n * max(L - 2, 0) * m * m + 2 * m * m * n * (L - 1)
    return (steps + 2) * fwd + steps * step


def _add_kernels(rr: RoundRobin, sizes, train_sizes, device, dtype, tag: str) -> list[tuple]:
    """Register ours/reference calls of every kernel; returns [(kernel, size, flops, key, per, compare)].

    ``compare`` maps the two calls' results to tensors of one layout for the max relative difference
    (the pass is batch-major, the reference time-major); the conversion is not timed.
    """
    rows = []
    same = (lambda ours: ours, lambda ref_: ref_)
    for n, L, m in sizes:
        p, X, _ = _inputs(n, L, m, device, dtype)
        run, fwr = rnn_core.forward(p, X), ref.forward_reference(p, X)
        key = f"{tag} {(n, L, m)}"
        rr.add(f"forward ours {key}", lambda p=p, X=X: rnn_core.forward(p, X))
        rr.add(f"forward ref {key}", lambda p=p, X=X: ref.forward_reference(p, X))
        rows.append(("forward", (n, L, m), flops_forward(n, L, m), f"forward {{}} {key}", 1,
                     (lambda o: o.hidden_states(), lambda r: r.hidden[1:].transpose(0, 1))))
        # the pass's backward fills the deltas of ``run`` in place (delta_1 included, as the reference)
        rr.add(f"backward_deltas ours {key}", lambda p=p, run=run: rnn_core.backward(p, run, first_delta=True))
        rr.add(f"backward_deltas ref {key}", lambda p=p, fw=fwr: ref.backward_deltas_reference(p, fw))
        rows.append(("backward_deltas", (n, L, m), flops_backward(n, L, m), f"backward_deltas {{}} {key}", 1,
                     (lambda o: o.all_deltas(), lambda r: r.transpose(0, 1))))
        rr.add(f"empirical_ntk ours {key}", lambda p=p, X=X: rnn_core.empirical_ntk(p, X))
        rr.add(f"empirical_ntk ref {key}", lambda p=p, X=X: ref.empirical_ntk_structured_reference(p, X))
        rows.append(("empirical_ntk", (n, L, m), flops_ntk(n, L, m), f"empirical_ntk {{}} {key}", 1, same))
    for n, L, m in train_sizes:
        p, X, y = _inputs(n, L, m, device, dtype)
        eta = 0.5 * rnn_core.train.default_eta(p, X)
        S = TRAIN_STEPS
        key = f"{tag} {(n, L, m)}"
        rr.add(f"train ours {key}",
               lambda p=p, X=X, y=y, eta=eta: rnn_core.train_gd(p, X, y, eta=eta, steps=S, record_every=S).W_T - p.W)
        rr.add(f"train ref {key}", lambda p=p, X=X, y=y, eta=eta: ref.train_gd_reference(p, X, y, eta=eta, steps=S)[0] - p.W)
        rows.append((f"train_gd step (of {S})", (n, L, m), flops_train(n, L, m, S) / S, f"train {{}} {key}", S, same))
    return rows


def _add_ntk_profile(rr: RoundRobin, sizes, device) -> list[tuple]:
    """Where empirical_ntk's time goes: the feature pass (forward + backward) and the Gram step."""
    from rnn_core import ntk as ntk_mod

    rows = []
    for n, L, m in sizes:
        p, X, _ = _inputs(n, L, m, device, torch.float64)
        N = n * (L - 1)
        deltas, h_prev = ntk_mod.ntk_features(p, X)
        deltas_ref, h_prev_ref = ref.features_reference(p, X)
        key = f"{(n, L, m)}"
        rr.add(f"features ours {key}", lambda p=p, X=X: ntk_mod.ntk_features(p, X))
        rr.add(f"features ref {key}", lambda p=p, X=X: ref.features_reference(p, X))
        rr.add(f"gram ours {key}", lambda d=deltas, h=h_prev, m=m: ntk_mod.gram_kernel(d, h, None, None, m))
        rr.add(f"gram ref {key}", lambda d=deltas_ref, h=h_prev_ref, m=m: ref.gram_reference(d, h, None, None, m))
        rows.append(((n, L, m), "features (forward + backward)",
                     2 * n * (L - 1) * m * m + 2 * n * max(L - 2, 0) * m * m, f"features {{}} {key}"))
        rows.append(((n, L, m), "Gram step (two Grams, product, block sums)", 2 * N * N * m, f"gram {{}} {key}"))
    return rows


def _add_infinite(rr: RoundRobin, sizes, device) -> list[tuple]:
    from rnn_core.kernels import _BLOCK_ENTRIES, _CUDA_BLOCK_ENTRIES

    rows = []
    for n, L in sizes:
        gen = torch.Generator().manual_seed(0)
        X = torch.randn(n, L, D_IN, generator=gen, dtype=torch.float64)
        X = (X / X.norm(dim=2, keepdim=True)).to(device)
        rr.add(f"infinite {(n, L)}", lambda X=X: rnn_core.infinite_ntk(X))
        # entries computed: the upper block triangle of row blocks (block_rows rows x columns from a on)
        entries = _CUDA_BLOCK_ENTRIES if device.type == "cuda" else _BLOCK_ENTRIES
        br = max(8, entries // n)
        computed = sum((min(n, a + br) - a) * (n - a) for a in range(0, n, br))
        rows.append(((n, L), f"infinite {(n, L)}", INF_PASSES_PER_STEP * 8 * computed * L, computed * L))
    return rows


def _add_blas_ceilings(rr: RoundRobin, sizes, device) -> list[tuple]:
    """The single BLAS calls the fast paths are made of, alone: what each part could reach at best.

    - one recurrence step h @ W^T: (n x m) @ (m x m), as the forward and the backward do L-1 times;
    - the same with 4n rows (the row count the step would need to run near the peak);
    - one Gram panel: (c (L-1) x m) @ (m x n (L-1)), c = the panel's sequences (rnn_core.ntk).
    """
    from rnn_core import ntk as ntk_mod
    from rnn_core.model import _add_recurrent_

    rows = []
    gen = torch.Generator().manual_seed(0)
    for n, L, m in sizes:
        W = torch.randn(m, m, generator=gen, dtype=torch.float64).to(device)
        for k in (n, 4 * n):
            h = torch.randn(k, m, generator=gen, dtype=torch.float64).to(device)
            o = torch.zeros(k, m, dtype=torch.float64, device=device)
            key = f"ceiling step {k} {m}"
            # the call the recurrence makes (rnn_core.model._add_recurrent_: o <- o + h W^T), accumulating
            # into o as the recurrence does (no zero fill: that extra pass over o is not part of the step)
            rr.add(key, lambda h=h, W=W, o=o: _add_recurrent_(o, W, h))
            rows.append((f"recurrence step ({k} x {m}) @ ({m} x {m})", 2 * k * m * m, key))
        w_steps = L - 1
        c, _ = ntk_mod._panel_sizes(device, w_steps)
        F = torch.randn(n * w_steps, m, generator=gen, dtype=torch.float64).to(device)
        o = torch.empty(min(c, n) * w_steps, n * w_steps, dtype=torch.float64, device=device)
        key = f"ceiling panel {n} {L} {m}"
        rr.add(key, lambda F=F, o=o, r=o.shape[0]: torch.mm(F[:r], F.T, out=o))
        rows.append((f"Gram panel ({o.shape[0]} x {m}) @ ({m} x {n * w_steps})", 2 * o.shape[0] * m * n * w_steps, key))
    return rows


def run(device, *, quick: bool, repeats: int, peak_size: int) -> list[Table]:
    rr = RoundRobin(device)
    peak_jobs = {
        "f64": _matmul_job(device, torch.float64, peak_size),
        "f32": _matmul_job(device, torch.float32, peak_size),
        "bw_large": _copy_job(device, 256 << 20),
        "bw_cache": _copy_job(device, 1 << 19 if device.type == "cpu" else 1 << 24),
    }
    for name, (fn, _) in peak_jobs.items():
        rr.add(f"peak {name}", fn)
    sizes = QUICK_NTK_SIZES if quick else NTK_SIZES
    train_sizes = QUICK_TRAIN_SIZES if quick else TRAIN_SIZES
    inf_sizes = QUICK_INF_SIZES if quick else INF_SIZES
    kernels = {dt: _add_kernels(rr, sizes, train_sizes, device, dt, str(dt)) for dt in (torch.float64, torch.float32)}
    profile = _add_ntk_profile(rr, sizes, device)
    ceilings = _add_blas_ceilings(rr, sizes, device)
    inf = _add_infinite(rr, inf_sizes, device)
    print(f"(timing {len(rr.jobs)} calls in {repeats} rounds after a warm-up round; best of each)", flush=True)
    rr.run(repeats)

    peak = {k: work / rr.best(f"peak {k}") / 1e9 for k, (_, work) in peak_jobs.items()}
    median = {k: work / rr.median(f"peak {k}") / 1e9 for k, (_, work) in peak_jobs.items()}
    tp = Table(
        f"machine peaks measured in this run, device {device}, torch threads {torch.get_num_threads()}",
        ["statistic", f"float64 matmul {peak_size}^2 (GFLOP/s)", f"float32 matmul {peak_size}^2 (GFLOP/s)",
         "copy 256 MiB (GB/s)", "copy cache-sized (GB/s)"],
    )
    tp.header()
    tp.add(f"best of {repeats}", *(f"{peak[k]:.1f}" for k in peak_jobs))
    tp.add(f"median of {repeats}", *(f"{median[k]:.1f}" for k in peak_jobs))
    disturbed = min(median[k] / peak[k] for k in ("f64", "f32"))
    if disturbed < 0.85:
        print(f"\nWARNING: the median peak is {100 * disturbed:.0f}% of the best: the machine was disturbed during "
              "the run; shares below are against the best peak. Re-run on a quiet machine (or with more --repeats).",
              flush=True)

    tables = [tp]
    for dtype, name in ((torch.float64, "float64"), (torch.float32, "float32")):
        pk = peak["f64" if dtype == torch.float64 else "f32"]
        t = Table(
            f"kernels, {name} network, against the measured {name} matmul peak {pk:.1f} GFLOP/s (device {device})",
            ["kernel", "(n, L, m)", "GFLOP", "ours", "GFLOP/s", f"share of {name} peak", "reference", "ref. GFLOP/s",
             "ratio (ref / ours)", "max rel. diff vs reference"],
        )
        t.header()
        for kern, size, fl, key, per, (conv_ours, conv_ref) in kernels[dtype]:
            t_o, t_r = rr.best(key.format("ours")) / per, rr.best(key.format("ref")) / per
            diff = _rel(conv_ours(rr.first[key.format("ours")]), conv_ref(rr.first[key.format("ref")]))
            t.add(kern, str(size), f"{fl / 1e9:.2f}", f"{t_o:.4f} s", f"{fl / t_o / 1e9:.1f}",
                  f"{100 * fl / t_o / 1e9 / pk:.0f}%", f"{t_r:.4f} s", f"{fl / t_r / 1e9:.1f}",
                  f"{t_r / t_o:.2f}x", f"{diff:.1e}")
        tables.append(t)
    pk = peak["f64"]
    t = Table(
        f"empirical_ntk profile, float64 network, share of the float64 peak {pk:.1f} GFLOP/s",
        ["(n, L, m)", "part", "GFLOP", "ours", "GFLOP/s", "share of peak", "reference", "ref. share"],
    )
    t.header()
    for size, part, fl, key in profile:
        t_o, t_r = rr.best(key.format("ours")), rr.best(key.format("ref"))
        t.add(str(size), part, f"{fl / 1e9:.2f}", f"{t_o:.4f} s", f"{fl / t_o / 1e9:.1f}",
              f"{100 * fl / t_o / 1e9 / pk:.0f}%", f"{t_r:.4f} s", f"{100 * fl / t_r / 1e9 / pk:.0f}%")
    tables.append(t)
    t = Table(
        f"BLAS ceilings: the single float64 calls the fast paths are made of, alone, share of the peak {pk:.1f} GFLOP/s",
        ["call", "GFLOP", "time", "GFLOP/s", "share of peak"],
    )
    t.header()
    for name, fl, key in ceilings:
        tt = rr.best(key)
        t.add(name, f"{fl / 1e9:.3f}", f"{tt * 1e3:.3f} ms", f"{fl / tt / 1e9:.1f}", f"{100 * fl / tt / 1e9 / pk:.0f}%")
    tables.append(t)
    bw_l, bw_c = peak["bw_large"], peak["bw_cache"]
    t = Table(
        f"infinite_ntk (bandwidth-bound elementwise recursion), float64, against copy bandwidth "
        f"{bw_c:.1f} GB/s cache-sized / {bw_l:.1f} GB/s 256 MiB",
        ["(n, L)", "time", "entry-steps / s (1e9)", f"GB/s ({INF_PASSES_PER_STEP} passes / step)",
         "share of cache copy bw", "share of 256 MiB copy bw"],
    )
    t.header()
    for size, key, nbytes, entry_steps in inf:
        tt = rr.best(key)
        gbs = nbytes / tt / 1e9
        t.add(str(size), f"{tt:.4f} s", f"{entry_steps / tt / 1e9:.2f}", f"{gbs:.1f}",
              f"{100 * gbs / bw_c:.0f}%", f"{100 * gbs / bw_l:.0f}%")
    tables.append(t)
    return tables


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.peak", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="toy sizes (a smoke test of the benchmark)")
    ap.add_argument("--repeats", type=int, default=5, help="best of this many timed calls (default 5)")
    ap.add_argument("--peak-size", type=int, default=None, help="matmul size for the peak (default 4096; 512 with --quick)")
    ap.add_argument("--device", default="auto")
    add_out_argument(ap)
    args = ap.parse_args(argv)
    device = rnn_core.resolve_device(args.device)
    size = args.peak_size or (512 if args.quick else 4096)
    tables = run(device, quick=args.quick, repeats=args.repeats, peak_size=size)
    print(f"\nsaved {save_run(tables, device, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
