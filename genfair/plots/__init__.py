"""Figures of metrics across generations, and grids of generated images."""

from genfair.plots._change import change_figure, save_change_figure
from genfair.plots._curves import METRIC_LABELS, plot_curves, save_metric_figure
from genfair.plots._facets import faceted_metric_figure, level_styles
from genfair.plots._fidelity import FIDELITY_PANELS, faceted_fidelity_figure, save_fidelity_figure
from genfair.plots._forest import forest_figure, save_forest_figure
from genfair.plots._paired import save_paired_figure
from genfair.plots._samples import save_sample_grid, save_samples_across_generations

__all__ = [
    "FIDELITY_PANELS",
    "METRIC_LABELS",
    "change_figure",
    "faceted_fidelity_figure",
    "faceted_metric_figure",
    "forest_figure",
    "level_styles",
    "plot_curves",
    "save_change_figure",
    "save_fidelity_figure",
    "save_forest_figure",
    "save_metric_figure",
    "save_paired_figure",
    "save_sample_grid",
    "save_samples_across_generations",
]
