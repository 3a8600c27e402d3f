"""Run every benchmark (or the ones named) and save one numbered JSON run file under --out.

    python -m benchmarks [peak] [ntk] [infinite] [training] [precision] [--device auto] [--quick]
                         [--repeats 5] [--out DIR]

peak: the machine's float64/float32 matmul peak and copy bandwidth, measured in this run, and every
kernel's GFLOP/s and share of it (against the reference implementations, same process); ntk,
infinite, training: our kernels against baselines (ratios); precision: float32 networks against
float64 over the quick grid. Results go to DIR (default ./benchmark-results), never into the package.
Run from the source checkout (benchmarks is not an installed package).
"""

from __future__ import annotations

import argparse
import sys

import rnn_core
from benchmarks import infinite, ntk
from benchmarks.common import add_out_argument, save_run

KNOWN = ("peak", "ntk", "infinite", "training", "precision")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("which", nargs="*", metavar="{" + ",".join(KNOWN) + "}", help="benchmarks to run (default: all)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--budget-s", type=float, default=120.0, help="per-baseline time budget")
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke test of the benchmark)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocess probes")
    ap.add_argument("--repeats", type=int, default=5, help="peak: best of this many timed calls (default 5)")
    add_out_argument(ap)
    args = ap.parse_args(argv)
    unknown = [w for w in args.which if w not in KNOWN]
    if unknown:
        ap.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(KNOWN)}")
    if args.repeats < 1:
        ap.error("--repeats must be an integer >= 1")
    which = args.which or list(KNOWN)
    device = rnn_core.resolve_device(args.device)
    tables = []
    if "peak" in which:
        from benchmarks import peak

        tables += peak.run(device, quick=args.quick, repeats=args.repeats, peak_size=512 if args.quick else 4096)
    if "ntk" in which:
        sizes = [(8, 4, 64), (16, 8, 128)] if args.quick else ntk.DEFAULT_SIZES
        tables += ntk.run(sizes, device, args.budget_s, not args.no_memory)
    if "infinite" in which:
        sizes = [(256, 8), (512, 16)] if args.quick else infinite.DEFAULT_SIZES
        tables += infinite.run(sizes, device, args.budget_s, not args.no_memory)
    if "training" in which:
        from benchmarks import training

        sizes = [(32, 4, 128)] if args.quick else training.DEFAULT_SIZES
        tables += training.run(sizes, device, args.budget_s)
    if "precision" in which:
        from benchmarks import precision

        tables += precision.run(device, quick=args.quick, seeds=1, n=16 if args.quick else 32, steps=10 if args.quick else 50)
    print(f"\nsaved {save_run(tables, device, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
