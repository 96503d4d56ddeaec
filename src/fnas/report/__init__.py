"""Results for people: plots (each a matplotlib ``Figure``) and the HTML report.

The plot functions return figures and never touch pyplot's global state: save one with
``fig.savefig(path)``, or show it in a notebook as it is. The benchmark's figure lives with the
benchmark (:mod:`fnas.benchmark.plot`) and is re-exported here. Model export is
:mod:`fnas.nn.export` (its file formats) and :func:`fnas.export` (the call).
"""

import sys

from fnas.benchmark import plot as _bench_plot
from fnas.benchmark.plot import best_so_far_matrix, plot_bench
from fnas.nn import export as _export
from fnas.report.html import (
    RunData,
    figure_png,
    load_run,
    plot_best,
    plot_critic,
    plot_entropy,
    plot_knowledge,
    plot_pareto,
    plot_pool,
    plot_replay,
    plot_screening,
    write_report,
)

__all__ = ["best_so_far_matrix", "plot_bench", "RunData", "load_run", "write_report",
           "figure_png", "plot_best", "plot_pareto", "plot_entropy", "plot_critic",
           "plot_screening", "plot_knowledge", "plot_pool", "plot_replay"]

# The old paths, kept so existing code keeps working: fnas.report.bench_plot is the same module
# object as fnas.benchmark.plot, and fnas.report.export as fnas.nn.export (moved there in
# issue 33: exporting a network is no report, and needs nothing above the networks).
sys.modules[f"{__name__}.bench_plot"] = bench_plot = _bench_plot
sys.modules[f"{__name__}.export"] = export = _export
