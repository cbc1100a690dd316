"""Command-line entry points: ``genfair`` (a Hydra app), ``genfair-plot`` and ``genfair-aggregate``.

Every name is imported on first use (PEP 562, ``genfair._lazy``): ``genfair --help``
and ``genfair --version`` load neither torch nor Hydra's composition, and ``genfair`` does not
load the plotting and statistics modules of ``genfair-plot`` and ``genfair-aggregate``.
"""

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy)
    from genfair.cli._aggregate import Aggregate, aggregate, aggregate_main
    from genfair.cli._app import arms_from_config, study_config
    from genfair.cli._config import GenfairConfig, register_configs
    from genfair.cli._main import main
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

__getattr__, __dir__ = lazy_exports(__name__, __file__)
