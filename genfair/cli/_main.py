"""The ``genfair`` command's entry point: ``--version`` and ``--help`` answered at once, without
Hydra's composition (which loads every config schema, and with them torch); every other command
goes to the Hydra app of ``genfair.cli._app`` with its arms overrides in a form Hydra takes
(``genfair.cli._arms``)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Entry point of the ``genfair`` command (reads ``sys.argv``)."""
    arguments = sys.argv[1:]
    if "--version" in arguments:
        from genfair import __version__

        print(f"genfair {__version__}")
        return
    if "--help" in arguments or "-h" in arguments:
        from genfair.cli._help import app_help

        print(app_help())
        return
    from genfair.cli._app import run_app
    from genfair.cli._arms import command_line
    from genfair.errors import ConfigError

    try:
        sys.argv[1:] = command_line(arguments)
    except ConfigError as error:
        print(f"genfair: error: {error}", file=sys.stderr)
        sys.exit(2)
    run_app()
