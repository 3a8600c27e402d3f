"""The rnn-claims HTML report: ``reports.build.build_report`` and ``reports.compare.compare_results``.

Submodules are imported lazily so that ``import reports`` stays cheap (matplotlib loads on first use).
"""

from __future__ import annotations

__all__ = ["build_report", "compare_results"]


def __getattr__(name):
    if name == "build_report":
        from .build import build_report

        return build_report
    if name == "compare_results":
        from .compare import compare_results

        return compare_results
    raise AttributeError(name)
