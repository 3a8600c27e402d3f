"""Benchmarks: our kernels against baselines run in the same process, printed as ratios.

    python -m benchmarks            # everything, CPU (CUDA when present)
    python -m benchmarks ntk        # empirical NTK only; also: infinite, training
"""
