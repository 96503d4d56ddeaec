"""Results for people: plots (each a matplotlib ``Figure``), the HTML report, model export.

The plot functions return figures and never touch pyplot's global state: save one with
``fig.savefig(path)``, or show it in a notebook as it is. The benchmark's figure lives with the
benchmark (:mod:`fnas.benchmark.plot`) and is re-exported here.
"""

import sys

from fnas.benchmark import plot as _bench_plot
from fnas.benchmark.plot import best_so_far_matrix, plot_bench
from fnas.report.html import (
    RunData,
    figure_png,
    load_run,
    plot_best,
    plot_critic,
    plot_entropy,
    plot_pareto,
    plot_pool,
    plot_replay,
    plot_screening,
    write_report,
)

__all__ = ["best_so_far_matrix", "plot_bench", "RunData", "load_run", "write_report",
           "figure_png", "plot_best", "plot_pareto", "plot_entropy", "plot_critic",
           "plot_screening", "plot_pool", "plot_replay"]

# The old path, kept so existing code keeps working: fnas.report.bench_plot is the same module
# object as fnas.benchmark.plot (moved there in issue 33).
sys.modules[f"{__name__}.bench_plot"] = bench_plot = _bench_plot
