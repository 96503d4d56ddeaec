"""Results for people: plots (each a matplotlib ``Figure``), the HTML report, model export.

The plot functions return figures and never touch pyplot's global state: save one with
``fig.savefig(path)``, or show it in a notebook as it is.
"""

from fnas.report.bench_plot import best_so_far_matrix, plot_bench
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
