"""Paired comparisons of arms across replicates: differences, t-intervals, sign-flip tests,
Holm and Benjamini–Hochberg adjustments, and a declared primary endpoint.

Replicate r of every arm shares its random streams (common random numbers), so arms are
compared by the paired difference d_r = x_r(arm) - x_r(baseline), r = 1..n, per cell (arm,
metric, group, generation). For n finite pairs, with d̄ the mean and s the sample standard
deviation (ddof 1):

    se = s / sqrt(n)                                                                        (1)
    [lo, hi] = d̄ -+ t_{(1+level)/2, n-1} se                   (the t-interval)            (2)
    p_t = 2 P(T_{n-1} >= |d̄ / se|)        (paired t-test, = scipy.stats.ttest_rel)         (3)
    p_sf = #{s in S : |mean(s * d)| >= |d̄|} / |S|             (sign-flip permutation test) (4)

where S is all 2^n sign vectors for n <= 16, else the observed signs plus B random ones
(p_sf = (1 + #extreme among B) / (1 + B), so p_sf > 0). Over the family of every exploratory
cell, :func:`holm` and :func:`benjamini_hochberg` adjust both p-values (5, 6). The primary
endpoint, declared in :class:`CompareConfig` before the run, averages the primary metric and
group over the primary generations per replicate, then applies (1)-(4) once per arm; with one
arm compared it is tested alone at alpha = 1 - level (EVIDENCE.md: "a primary endpoint, declared
before the run"), with several the arms' primary rows are one family of declared contrasts,
Holm- and BH-adjusted among themselves (with one arm the adjusted p equals p).

Declared relative to generation 0 (``relative_to = "generation_0"``, EVIDENCE.md: "measure the
loop, not the start"), each replicate's endpoint is its change from its own generation 0,

    c_r = mean_{first <= g <= last} x_{g,r} - x_{0,r}                                       (7)

and the arms are compared by the paired difference of those changes, d_r = c_r(arm) -
c_r(baseline) (a difference in differences), with (1)-(4) as above; generation 0's own paired
difference is reported as a separate ``start`` row (where the arms started). A replicate whose
generation-0 value is missing drops out of its pair (``n`` counts the pairs left); an arm with
none is refused. The interval is the plain t-interval (2) for bounded metrics too: a change of a
metric in [0, 1] lies in [-1, 1], a difference of changes in [-2, 2], and (2), which every
paired difference here uses, is not mapped to a bounded scale.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> base = rng.normal(size=(3, 8))                      # (generations, replicates)
    >>> values = {"mle": {"coverage/minority": base}, "ple": {"coverage/minority": base + 0.1}}
    >>> result = paired_comparisons(values, generations=[0, 1, 2], minority="minority")
    >>> round(result.primary["ple"]["mean_diff"], 6), result.primary["ple"]["p_signflip"]
    (0.1, 0.0078125)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genfair._paired_tests import _paired_stats, _SignCache, benjamini_hochberg, holm, sign_flip_pvalue
from genfair.errors import ConfigError, check_choice, check_number, check_positive_int

__all__ = [
    "COMPARISON_COLUMNS",
    "RELATIVE_TO",
    "CompareConfig",
    "PairedComparisons",
    "benjamini_hochberg",
    "changes_from_generation_0",
    "check_compare",
    "holm",
    "paired_comparisons",
    "read_comparisons_csv",
    "sign_flip_pvalue",
    "write_comparisons_csv",
]


RELATIVE_TO = ("none", "generation_0")  # compare.relative_to: the endpoint's level, or its change from generation 0
COMPARISON_COLUMNS = (
    "endpoint", "relative_to", "arm", "baseline", "metric", "group", "generation", "n",
    "mean_arm", "mean_baseline", "mean_diff", "se", "level", "lo", "hi",
    "p_t", "p_signflip", "signflip", "p_signflip_holm", "q_signflip_bh", "p_t_holm", "q_t_bh",
)  # fmt: skip


@dataclass  # not frozen: Hydra merges command-line overrides into it
class CompareConfig:
    """How arms are compared, declared before the run.

    Args:
        baseline: the arm every other arm is compared with (``None``: the first arm).
        primary_metric: the primary endpoint's metric (``coverage``).
        primary_group: its group; the literal ``"minority"`` means the run's minority group
            (given to :func:`paired_comparisons`), any other value a group name.
        primary_first, primary_last: the primary endpoint averages generations
            ``primary_first <= g <= primary_last`` per replicate (``None``: the last
            generation, so the default is 1 .. G-1: every generation trained on synthetic data).
        permutations: random sign flips B when a cell has more than 16 pairs.
        level: confidence level of the t-intervals; the primary endpoint is tested at 1 - level.
        relative_to: ``none``: the primary endpoint is the metric's mean over
            ``primary_first..primary_last``; ``generation_0``: that mean minus the replicate's own
            generation-0 value (7), compared as a difference in differences, with generation 0's
            difference as its own ``start`` row; it needs ``primary_first >= 1``.
    """

    baseline: str | None = None
    primary_metric: str = "coverage"
    primary_group: str = "minority"
    primary_first: int = 1
    primary_last: int | None = None
    permutations: int = 10000
    level: float = 0.95
    relative_to: str = "none"

    def __post_init__(self) -> None:
        if self.baseline is not None:
            _check_name("compare.baseline", self.baseline, "an arm name or None (the first arm)")
        _check_name("compare.primary_metric", self.primary_metric, "a metric name")
        _check_name("compare.primary_group", self.primary_group, "'minority' or a group name")
        check_positive_int("compare.primary_first", self.primary_first, minimum=0)
        if self.primary_last is not None:
            check_positive_int("compare.primary_last", self.primary_last, minimum=self.primary_first)
        check_positive_int("compare.permutations", self.permutations)
        check_number("compare.level", self.level, above=0, below=1)
        check_choice("compare.relative_to", self.relative_to, RELATIVE_TO)
        if self.relative_to == "generation_0" and self.primary_first < 1:
            raise ConfigError(
                "compare.primary_first must be >= 1 with compare.relative_to 'generation_0' (a change from "
                f"generation 0 over generations that include it), got {self.primary_first}"
            )


def _check_name(key: str, value: object, allowed: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")


@dataclass(frozen=True)
class PairedComparisons:
    """What :func:`paired_comparisons` found.

    Attributes:
        rows: one dict per exploratory cell (arm, metric, group, generation) with the columns of
            :data:`COMPARISON_COLUMNS` (``endpoint`` = ``"exploratory"``, ``relative_to`` =
            ``"none"``).
        primary: ``{arm: row}`` of the primary endpoint for every non-baseline arm (``endpoint``
            = ``"primary"``, ``relative_to`` as declared, ``generation`` = ``"first-last"``,
            adjusted columns over the primary rows).
        start: ``{arm: row}``, with ``relative_to = "generation_0"``: the primary metric's paired
            difference at generation 0 (``endpoint`` = ``"start"``, adjusted columns NaN);
            empty otherwise.
        baseline: the baseline arm; ``group``: the primary group resolved (the minority's name).
        config: the :class:`CompareConfig` used.
    """

    rows: list[dict]
    primary: dict[str, dict]
    baseline: str
    group: str
    config: CompareConfig = field(default_factory=CompareConfig)
    start: dict[str, dict] = field(default_factory=dict)


def check_compare(
    config: CompareConfig, arms: Sequence[str], replicates: int, *, replicates_key: str = "loop.replicates"
) -> str:
    """Check what can be checked before a run starts; returns the baseline arm.

    Raises :class:`ConfigError` when ``config.baseline`` names no arm, there is no other arm to
    compare with, or ``replicates`` < 2 (``replicates_key`` names the setting in the message).
    """
    arms = list(arms)
    baseline = config.baseline if config.baseline is not None else (arms[0] if arms else None)
    if baseline not in arms:
        raise ConfigError(f"compare.baseline must be one of the arms {arms}, got {config.baseline!r}")
    if len(arms) < 2:
        raise ConfigError(f"compare needs at least 2 arms (a baseline and an arm to compare with it), got {arms}")
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 2:
        raise ConfigError(
            f"{replicates_key} must be an integer >= 2 for paired inference (compare), got {replicates!r}"
        )
    return baseline


def paired_comparisons(
    values: Mapping[str, Mapping[str, np.ndarray]],
    *,
    generations: Sequence[int],
    minority: str | None = None,
    config: CompareConfig = CompareConfig(),
    arms: Sequence[str] | None = None,
    seed: int = 0,
) -> PairedComparisons:
    """Every non-baseline arm against the baseline, cell by cell and on the primary endpoint.

    Args:
        values: ``values[arm]["metric/group"]``: float ``(G, R)``, row i the generation
            ``generations[i]``, column r replicate r (or seed r) of that arm, paired across arms;
            NaN where a value is undefined (a pair with a NaN is left out of its cell).
        generations: the G generation numbers of the rows.
        minority: the run's minority group, which ``config.primary_group = "minority"`` names.
        config: baseline, primary endpoint, permutations and level.
        arms: the arms in order (default: the order of ``values``); the baseline defaults to the first.
        seed: root of the random sign flips (cells with n > 16 pairs); the flips for n pairs
            come from ``SeedSequence(seed, spawn_key=(n,))``, so a cell's p-value does not depend
            on the other cells.

    Returns:
        :class:`PairedComparisons`, one row per cell the arm and the baseline both measured
        (keys of the baseline, in its order). Each row has n (finite pairs), the means of both arms over
        them, mean_diff = d̄, se (1), the t-interval lo/hi (2), p_t (3), p_signflip (4), and over
        the family of all exploratory rows: ``p_signflip_holm`` and ``q_signflip_bh`` (the
        sign-flip p adjusted by (5) and (6): the default to report), ``p_t_holm`` and ``q_t_bh``
        (the t-test p adjusted the same way). Cells with n < 2 pairs have NaN se, interval and
        p-values; NaN p-values stay out of the family size m. The primary endpoint averages
        ``primary_metric/primary_group`` over ``primary_first <= g <= primary_last`` per
        replicate (a replicate enters when all those values are finite in both arms; with
        ``relative_to = "generation_0"`` its generation-0 value too, subtracted as in (7)), then
        (1)-(4); the primary rows are adjusted among themselves (one arm: p itself).

    Raises:
        ConfigError: before any work, when the baseline names no arm, there is one arm, R < 2,
            the arrays' shapes disagree, or the primary metric, group or generations are not in
            ``values``; with ``relative_to = "generation_0"``, when generation 0 is not among
            ``generations`` or an arm has no finite generation-0 value of the primary metric.
    """
    arms = list(arms) if arms is not None else list(values)
    unknown = [arm for arm in arms if arm not in values]
    if unknown:
        raise ConfigError(f"arms must be arms of values {list(values)}, got {unknown}")
    shape = _common_shape(values, arms, len(generations))
    baseline = check_compare(config, arms, shape[1], replicates_key="replicates (columns of values)")
    keys = list(values[baseline])
    primary_key, group = _primary_key(config, keys, minority)
    lacking = [arm for arm in arms if primary_key not in values[arm]]
    if lacking:
        raise ConfigError(f"compare.primary_metric {primary_key!r} must be measured in every arm, got none in {lacking}")
    window = _primary_window(config, generations)
    start_row = _start_row(config, generations, values, arms, primary_key)
    signs = _SignCache(seed=seed, permutations=config.permutations)

    rows, primary, start = [], {}, {}
    for arm in (a for a in arms if a != baseline):
        for key in (k for k in keys if k in values[arm]):
            metric, key_group = key.split("/", 1)
            x, y = np.asarray(values[arm][key], float), np.asarray(values[baseline][key], float)
            for i, generation in enumerate(generations):
                cell = {"endpoint": "exploratory", "relative_to": "none", "arm": arm, "baseline": baseline,
                        "metric": metric, "group": key_group, "generation": int(generation)}  # fmt: skip
                rows.append({**cell, **_paired_stats(x[i], y[i], level=config.level, signs=signs)})
        x, y = (_endpoint(np.asarray(values[a][primary_key], float), window, start_row) for a in (arm, baseline))
        span = [int(g) for g, inside in zip(generations, window) if inside]
        cell = {"arm": arm, "baseline": baseline, "metric": config.primary_metric, "group": group}
        primary[arm] = {"endpoint": "primary", "relative_to": config.relative_to, **cell,
                        "generation": f"{min(span)}-{max(span)}", **_paired_stats(x, y, level=config.level, signs=signs)}  # fmt: skip
        if start_row is not None:
            x, y = (np.asarray(values[a][primary_key], float)[start_row] for a in (arm, baseline))
            start[arm] = {"endpoint": "start", "relative_to": "none", **cell, "generation": "0",
                          **_paired_stats(x, y, level=config.level, signs=signs),
                          **dict.fromkeys((column for column, *_ in _ADJUSTED), math.nan)}  # fmt: skip
    for family in (rows, list(primary.values())):  # the exploratory cells; the declared contrasts
        for column, adjust, source in _ADJUSTED:
            for row, value in zip(family, adjust([row[source] for row in family])):
                row[column] = float(value)
    return PairedComparisons(rows, primary, baseline, group, config, start)


def _endpoint(array: np.ndarray, window: np.ndarray, start_row: int | None) -> np.ndarray:
    """``(R,)``: each replicate's mean of ``array (G, R)`` over ``window``, minus its own row
    ``start_row`` (generation 0) when given, (7); NaN where any value it needs is NaN."""
    level = array[window].mean(axis=0)
    return level if start_row is None else level - array[start_row]


def _start_row(
    config: CompareConfig, generations: Sequence[int], values: Mapping[str, Mapping[str, np.ndarray]],
    arms: list[str], key: str,
) -> int | None:
    """The row of generation 0 when the endpoint is relative to it (else ``None``); refuses a run
    without generation 0, or an arm whose every replicate lacks it (a lost arm)."""
    if config.relative_to == "none":
        return None
    listed = [int(g) for g in generations]
    if 0 not in listed:
        raise ConfigError(
            f"compare.relative_to 'generation_0' needs generation 0 among the measured generations {listed}, "
            f"got {config.relative_to!r}"
        )
    row = listed.index(0)
    lost = [arm for arm in arms if not np.isfinite(np.asarray(values[arm][key], float)[row]).any()]
    if lost:
        raise ConfigError(
            f"compare.relative_to 'generation_0' needs a finite generation-0 value of {key} in some replicate "
            f"of every arm, got none in {lost}"
        )
    return row


def changes_from_generation_0(
    values: Mapping[str, Mapping[str, np.ndarray]], *, generations: Sequence[int], level: float = 0.95
) -> list[dict]:
    """Each arm's change from generation 0 per replicate, x_{g,r} - x_{0,r}, summarized across
    replicates at every generation: one row per (arm, metric, group, generation) with ``arm``,
    ``metric``, ``group``, ``generation``, ``n`` (replicates with both values), ``mean`` (of the
    changes), ``se``, ``level``, ``lo`` and ``hi`` (the plain t-interval (2), which a change of a
    bounded metric, in [-1, 1], gets as every paired difference here does).

    Args:
        values: as :func:`paired_comparisons`'s, ``values[arm]["metric/group"]`` ``(G, R)``.
        generations: the G generation numbers of the rows; one of them must be 0.
    """
    listed = [int(g) for g in generations]
    if 0 not in listed:
        raise ConfigError(f"generations must include 0 to measure a change from generation 0, got {listed}")
    start = listed.index(0)
    signs = _SignCache(seed=0, permutations=1)  # _paired_stats's p-values are not reported here
    rows = []
    for arm, arrays in values.items():
        for key, array in arrays.items():
            metric, group = key.split("/", 1)
            array = np.asarray(array, float)
            for i, generation in enumerate(listed):
                stats_ = _paired_stats(array[i], array[start], level=level, signs=signs)
                rows.append({"arm": arm, "metric": metric, "group": group, "generation": generation,
                             "n": stats_["n"], "mean": stats_["mean_diff"], "se": stats_["se"], "level": level,
                             "lo": stats_["lo"], "hi": stats_["hi"]})  # fmt: skip
    return rows


_ADJUSTED = (  # (column, adjustment, adjusted p-value) over the family of exploratory rows
    ("p_signflip_holm", holm, "p_signflip"),
    ("q_signflip_bh", benjamini_hochberg, "p_signflip"),
    ("p_t_holm", holm, "p_t"),
    ("q_t_bh", benjamini_hochberg, "p_t"),
)


def _common_shape(values: Mapping[str, Mapping[str, np.ndarray]], arms: list[str], g: int) -> tuple[int, int]:
    """The ``(G, R)`` every array of ``values`` has; a mismatch raises :class:`ConfigError`."""
    shape = None
    for arm in arms:
        for key, array in values[arm].items():
            if "/" not in key:
                raise ConfigError(f"values[{arm!r}] keys must be 'metric/group', got {key!r}")
            found = np.shape(array)
            shape = shape or found
            if len(found) != 2 or found != shape or found[0] != g:
                raise ConfigError(
                    f"values[{arm!r}][{key!r}] must have shape (generations, replicates) = ({g}, R) like "
                    f"the others {shape}, got {found}"
                )
    if shape is None:
        raise ConfigError(f"values must hold at least one 'metric/group' array, got none for the arms {arms}")
    return shape


def _primary_key(config: CompareConfig, keys: list[str], minority: str | None) -> tuple[str, str]:
    """``("metric/group", group)`` of the primary endpoint; refuses a metric or group not in ``keys``."""
    metrics = list(dict.fromkeys(key.split("/", 1)[0] for key in keys))
    if config.primary_metric not in metrics:
        raise ConfigError(f"compare.primary_metric must be one of the measured metrics {metrics}, got {config.primary_metric!r}")
    group = minority if config.primary_group == "minority" and minority is not None else config.primary_group
    groups = [key.split("/", 1)[1] for key in keys if key.split("/", 1)[0] == config.primary_metric]
    if group not in groups:
        shown = f"{config.primary_group!r}" + (f" (the minority, {group!r})" if group != config.primary_group else "")
        raise ConfigError(
            f"compare.primary_group must be 'minority' or one of the groups {groups} of "
            f"{config.primary_metric}, got {shown}"
        )
    return f"{config.primary_metric}/{group}", group


def _primary_window(config: CompareConfig, generations: Sequence[int]) -> np.ndarray:
    """``(G,)`` bool: the rows averaged by the primary endpoint; refuses an empty window."""
    generations = np.asarray(generations, dtype=int)
    last = config.primary_last if config.primary_last is not None else int(generations.max(initial=-1))
    window = (generations >= config.primary_first) & (generations <= last)
    if not window.any():
        raise ConfigError(
            f"compare.primary_first..primary_last must cover a measured generation {generations.tolist()}, "
            f"got {config.primary_first}..{config.primary_last}"
        )
    return window


def write_comparisons_csv(path: Path, result: PairedComparisons) -> Path:
    """Write ``comparisons.csv`` atomically: the primary rows first, then the ``start`` rows (with
    ``relative_to = "generation_0"``), then the exploratory ones, with the columns of
    :data:`COMPARISON_COLUMNS`."""
    # Imported here: genfair._outputs and genfair.checkpoint import torch, which the statistics
    # above do not need (this module stays importable with numpy and scipy alone).
    from genfair._outputs import write_metrics_csv

    write_metrics_csv(Path(path), [*result.primary.values(), *result.start.values(), *result.rows], columns=COMPARISON_COLUMNS)
    return Path(path)


_TEXT_COLUMNS = ("endpoint", "relative_to", "arm", "baseline", "metric", "group", "generation", "signflip")


def read_comparisons_csv(path: Path) -> list[dict]:
    """The rows of a ``comparisons.csv``, in file order: ``n`` an int, the other columns of
    :data:`COMPARISON_COLUMNS` outside the text ones floats (NaN where empty); a file written
    before ``relative_to`` existed reads as ``"none"`` there."""
    import csv

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row.setdefault("relative_to", "none")
        for column in COMPARISON_COLUMNS:
            if column == "n":
                row[column] = int(row[column])
            elif column not in _TEXT_COLUMNS:
                row[column] = float(row.get(column) or "nan")
    return rows
