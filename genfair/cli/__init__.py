"""Command-line entry points: ``genfair`` (a Hydra app), ``genfair-plot`` and ``genfair-aggregate``."""

from genfair.cli._aggregate import Aggregate, aggregate, aggregate_main
from genfair.cli._app import arms_from_config, main, study_config
from genfair.cli._config import GenfairConfig, register_configs
from genfair.cli._plot import overlay, plot_main

__all__ = [
    "Aggregate",
    "GenfairConfig",
    "aggregate",
    "aggregate_main",
    "arms_from_config",
    "main",
    "overlay",
    "plot_main",
    "register_configs",
    "study_config",
]
