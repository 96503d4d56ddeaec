"""Results for people: plots (and, later, the HTML report and model export)."""

from fnas.report.bench_plot import best_so_far_matrix, plot_bench

__all__ = ["best_so_far_matrix", "plot_bench"]
