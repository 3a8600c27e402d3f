"""Benchmarks: our kernels against the machine's measured peak and against baselines run in the same
process, printed as shares and ratios, and the float32-versus-float64 error table.

    python -m benchmarks            # everything, CPU (CUDA when present); results in ./benchmark-results
    python -m benchmarks peak       # the measured peaks and each kernel's share; also: ntk, infinite,
                                    # training, precision; --out DIR names the results folder

Not an installed package: run it from the source checkout.
"""
