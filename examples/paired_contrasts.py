"""Paired contrasts between chosen arms of one run, on the run's primary endpoint.

A run's ``comparisons.csv`` sets every arm against one baseline (``compare.baseline``). A design
with several factors asks other questions: in ``experiment=fairness_x_madness`` (4 loop kinds x
4 estimators), "does ple differ from its control hyper_mle *within each loop kind*?". This script
answers them from the run's ``replicates.npz`` (chain r of every arm shares its random numbers,
so the contrasts are paired), with the same statistics as ``comparisons.csv``
(``genfair.comparisons``): per contrast the mean paired difference of the endpoint (the metric
of the group averaged over generations ``first..last`` per chain), its 95 % t-interval, the
exact sign-flip p-value, and Holm-adjusted p-values over the contrasts listed. With
``--relative-to generation_0`` the endpoint is each chain's change from its own generation 0
(``genfair.comparisons``, (7)): the contrast is a paired difference in differences.

    python examples/paired_contrasts.py RUN_DIR fresh-ple:fresh-hyper_mle augment-ple:augment-hyper_mle
    python examples/paired_contrasts.py RUN_DIR --metric recall --group 3 A:B
    python examples/paired_contrasts.py RUN_DIR --relative-to generation_0 fresh-ple:fresh-hyper_mle

Each ``A:B`` is "A minus B". Declare the contrasts before looking at the results; the first one
listed is the one to test alone at 0.05 if it is the study's primary question (reported
unadjusted as well).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from genfair.comparisons import RELATIVE_TO, CompareConfig, holm, paired_comparisons
from genfair.errors import ConfigError


def contrasts(
    run_dir: Path, pairs: list[tuple[str, str]], *, metric: str, group: str, first: int, last: int | None,
    relative_to: str = "none",
) -> list[dict]:
    """One row per ``(arm, baseline)`` pair: the endpoint's paired statistics (``relative_to`` as
    ``compare.relative_to``), Holm over the pairs."""
    with np.load(run_dir / "replicates.npz", allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    minority = json.loads((run_dir / "summary.json").read_text())["minority"]
    rows = []
    for arm, baseline in pairs:
        values = {name: {key.split("/", 1)[1]: array for key, array in arrays.items() if key.split("/", 1)[0] == name}
                  for name in (baseline, arm)}  # fmt: skip
        missing = [name for name, keys in values.items() if not keys]
        if missing:
            arms = sorted({key.split("/", 1)[0] for key in arrays})
            raise ConfigError(f"contrast {arm}:{baseline}: arms must be arms of {run_dir} ({arms}), got {missing}")
        generations = range(next(iter(values[baseline].values())).shape[0])
        config = CompareConfig(baseline=baseline, primary_metric=metric, primary_group=group,
                               primary_first=first, primary_last=last, relative_to=relative_to)  # fmt: skip
        result = paired_comparisons(values, generations=generations, minority=minority, config=config, arms=[baseline, arm])
        rows.append(result.primary[arm])
    for row, adjusted in zip(rows, holm([row["p_signflip"] for row in rows])):
        row["p_signflip_holm"] = float(adjusted)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("pairs", nargs="+", help="A:B, the arm A minus the arm B")
    parser.add_argument("--metric", default="coverage")
    parser.add_argument("--group", default="minority")
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--last", type=int, default=None)
    parser.add_argument("--relative-to", choices=RELATIVE_TO, default="none", help="generation_0: each chain's change")
    args = parser.parse_args(argv)
    bad = [pair for pair in args.pairs if pair.count(":") != 1]
    if bad:
        parser.error(f"pairs must be A:B, got {bad}")
    try:
        rows = contrasts(args.run_dir, [tuple(pair.split(":")) for pair in args.pairs], metric=args.metric,
                         group=args.group, first=args.first, last=args.last, relative_to=args.relative_to)  # fmt: skip
    except ConfigError as error:
        print(f"paired_contrasts: error: {error}", file=sys.stderr)
        return 2
    change = " change from generation 0" if args.relative_to == "generation_0" else ""
    print(f"| contrast | {args.metric}/{args.group}{change}, generations | n | mean difference [95 % t-interval] | sign-flip p | Holm |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['arm']} − {row['baseline']} | {row['generation']} | {row['n']} | "
              f"{row['mean_diff']:+.3f} [{row['lo']:+.3f}, {row['hi']:+.3f}] | {row['p_signflip']:.4f} | "
              f"{row['p_signflip_holm']:.4f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
