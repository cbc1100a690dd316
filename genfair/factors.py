"""How an experiment's arms decompose into factors: ``fully_synthetic-ple`` is loop kind
``fully_synthetic`` x estimator ``ple``.

A factored experiment declares its factors' levels and how an arm's name spells them
(:class:`ArmFactorsConfig`); :func:`place_arms` places every arm in exactly one cell before the
run, and the figures draw one column per level of one factor (the facet) and one colour per
level of the others (:mod:`genfair.plots._facets`). Without declared factors,
:func:`split_arms` splits each name at a separator (``genfair-plot --facet-by-prefix '-'``).

Example:
    >>> config = ArmFactorsConfig(levels={"loop": ["fresh", "augment"], "estimator": ["mle", "ple"]},
    ...                           pattern="{loop}-{estimator}")
    >>> placed = place_arms(config, ["fresh-mle", "fresh-ple", "augment-mle", "augment-ple"])
    >>> placed.facet, placed.placement["augment-ple"]
    ('loop', {'loop': 'augment', 'estimator': 'ple'})
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence
from dataclasses import dataclass, field

from genfair.errors import ConfigError

__all__ = ["COLOURS", "MARKERS", "ArmFactors", "ArmFactorsConfig", "place_arms", "split_arms"]

COLOURS = 10  # matplotlib's C0-C9: the colours a figure keeps distinct
MARKERS = ("o", "s", "^", "D")  # beyond COLOURS levels, colours repeat with the next marker


@dataclass  # not frozen: Hydra merges command-line overrides into it
class ArmFactorsConfig:
    """The factors an experiment's arms cross, declared before the run.

    Attributes:
        levels: ``{factor: [level, ...]}``, the levels in drawing order; empty (the default):
            the arms are not factored.
        pattern: how an arm's name spells its levels, each factor written ``{factor}``
            (``"{loop}-{estimator}"``); ``None``: the factors in order joined by ``-``. Every
            arm must match exactly one combination of levels, and every level must have an arm.
        facet: the factor whose levels are the figures' columns; the other factors' levels are
            colours. ``None``: the first factor when there are two or more, else no columns.
    """

    levels: dict[str, list[str]] = field(default_factory=dict)
    pattern: str | None = None
    facet: str | None = None


@dataclass(frozen=True)
class ArmFactors:
    """Where each arm sits: ``placement[arm] = {factor: level}``; ``levels`` in drawing order;
    ``facet`` the column factor (``None``: one column); ``colour`` the arm's colour level (the
    levels of the factors other than ``facet``, joined by ``-``; all of them without a facet)."""

    levels: dict[str, tuple[str, ...]]
    placement: dict[str, dict[str, str]]
    facet: str | None

    def column(self, arm: str) -> str:
        return self.placement[arm][self.facet] if self.facet is not None else ""

    def colour(self, arm: str) -> str:
        return "-".join(level for factor, level in self.placement[arm].items() if factor != self.facet)

    def columns(self) -> list[str]:
        return list(self.levels[self.facet]) if self.facet is not None else [""]

    def colours(self) -> list[str]:
        """The colour levels in drawing order (the product of the non-facet factors' levels that
        have an arm)."""
        return list(dict.fromkeys(self.colour(arm) for arm in sorted(self.placement, key=self._order)))

    def _order(self, arm: str) -> tuple[int, ...]:
        return tuple(self.levels[f].index(level) for f, level in self.placement[arm].items() if f != self.facet)


def place_arms(
    config: ArmFactorsConfig, arms: Sequence[str], *, facet: str | None = None, key: str = "arm_factors"
) -> ArmFactors | None:
    """Place every arm of ``arms`` in one cell of ``config``'s factors (``None`` when none are
    declared); ``facet`` overrides ``config.facet`` (``genfair-plot --facet``).

    Raises:
        ConfigError: a factor without levels, a pattern that names other factors, an arm that
            matches no combination of levels or two, a level without an arm, a facet that is not
            a factor, or more colour levels than :data:`COLOURS` x :data:`MARKERS` keep apart;
            ``key`` names the setting in the message.
    """
    levels = {str(f): [str(level) for level in values] for f, values in (config.levels or {}).items()}
    if not levels:
        if facet is not None:
            raise ConfigError(f"--facet must name a declared factor of the arms, got {facet!r}; these runs declare none (arm_factors)")
        return None
    empty = [f for f, values in levels.items() if not values or len(set(values)) != len(values)]
    if empty:
        raise ConfigError(f"{key}.levels must give each factor distinct levels, got {empty} without")
    pattern = config.pattern if config.pattern is not None else "-".join(f"{{{f}}}" for f in levels)
    named = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    if sorted(named) != sorted(levels):
        raise ConfigError(f"{key}.pattern must name each factor of {list(levels)} once, as {{factor}}, got {pattern!r}")
    spelled: dict[str, list[dict[str, str]]] = {}
    for combination in itertools.product(*levels.values()):
        cell = dict(zip(levels, combination))
        spelled.setdefault(pattern.format(**cell), []).append(cell)
    placement = {arm: _one_cell(arm, spelled.get(arm, []), pattern, key) for arm in arms}
    for f, values in levels.items():
        unused = [v for v in values if all(cell[f] != v for cell in placement.values())]
        if unused:
            raise ConfigError(f"{key}.levels.{f} must each have an arm, got no arm for {unused} (arms {list(arms)})")
    return _checked(levels, placement, config.facet if facet is None else facet, "--facet" if facet is not None else f"{key}.facet")


def split_arms(arms: Sequence[str], separator: str) -> ArmFactors:
    """Factors read off the names: ``prefix`` (the part before the first ``separator``, the
    columns) and ``rest`` (the colours) (``genfair-plot --facet-by-prefix SEP``).

    Raises :class:`ConfigError` when ``separator`` is empty or an arm's name lacks it.
    """
    if not separator:
        raise ConfigError(f"--facet-by-prefix must be a non-empty separator, got {separator!r}")
    lacking = [arm for arm in arms if separator not in arm.strip(separator)]
    if lacking:
        raise ConfigError(f"--facet-by-prefix {separator!r} must split every arm's name in two, got {lacking} without it")
    placement = {arm: dict(zip(("prefix", "rest"), arm.split(separator, 1))) for arm in arms}
    levels = {f: list(dict.fromkeys(cell[f] for cell in placement.values())) for f in ("prefix", "rest")}
    return _checked(levels, placement, "prefix", "--facet-by-prefix")


def _one_cell(arm: str, cells: list[dict[str, str]], pattern: str, key: str) -> dict[str, str]:
    if not cells:
        raise ConfigError(f"{key}: arm {arm!r} must match {key}.pattern {pattern!r} with levels of {key}.levels, got no match")
    if len(cells) > 1:
        raise ConfigError(f"{key}: arm {arm!r} must match {key}.pattern {pattern!r} once, got {len(cells)} matches {cells}")
    return cells[0]


def _checked(levels: dict[str, list[str]], placement: dict[str, dict[str, str]], facet: str | None, option: str) -> ArmFactors:
    """The :class:`ArmFactors`; refuses a facet that is not a factor and too many colour levels."""
    if facet is not None and facet not in levels:
        raise ConfigError(f"{option} must be one of the declared factors {list(levels)}, got {facet!r}")
    if facet is None and len(levels) > 1:
        facet = next(iter(levels))
    factors = ArmFactors({f: tuple(v) for f, v in levels.items()}, placement, facet)
    count, most = len(factors.colours()), COLOURS * len(MARKERS)
    if count > most:
        raise ConfigError(
            f"{option} {facet!r} leaves {count} colour levels; at most {most} can be told apart "
            f"({COLOURS} colours x {len(MARKERS)} markers): facet by another factor"
        )
    return factors
