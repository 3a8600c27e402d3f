"""Run every benchmark (or the ones named) and save one numbered JSON run file.

    python -m benchmarks [ntk] [infinite] [training] [--device auto] [--quick]
"""

from __future__ import annotations

import argparse
import sys

import rnn_core
from benchmarks import infinite, ntk
from benchmarks.common import save_run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("which", nargs="*", metavar="{ntk,infinite,training}", help="benchmarks to run (default: all)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--budget-s", type=float, default=120.0, help="per-baseline time budget")
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke test of the benchmark)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocess probes")
    args = ap.parse_args(argv)
    known = ("ntk", "infinite", "training")
    unknown = [w for w in args.which if w not in known]
    if unknown:
        ap.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(known)}")
    which = args.which or list(known)
    device = rnn_core.resolve_device(args.device)
    tables = []
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
    print(f"\nsaved {save_run(tables, device)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
