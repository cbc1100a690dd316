"""Figures of metrics across generations."""

from genfair.plots._curves import METRIC_LABELS, plot_curves, save_metric_figure

__all__ = ["METRIC_LABELS", "plot_curves", "save_metric_figure"]
