"""The built-in measures declare what they report (``genfair.evaluation``): every metric a real,
shrunk measurement returns is declared and every declared one is returned; the headline and the
primary endpoint's choices are read from the declarations; a metric gets the logit-scale
interval of ``metrics.csv`` exactly when it is declared in (0, 1), as a plug-in's does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genfair._arm_parts import headline_metrics, measured_metrics
from genfair._outputs import record_rows
from genfair.data import ClassMixtureData, DigitsData, GaussianData
from genfair.evaluation import UNIT_INTERVAL_METRICS, AnalyticEvaluation, EvaluationConfig, ImageEvaluation, in_unit_interval
from genfair.experiment import Arm
from genfair.loops import GenerationRecord, LoopConfig, simulate
from genfair.metrics import mean_interval, summarize_replicates, unit_interval_metrics
from genfair.models import AnalyticModelConfig, VAEConfig, build_analytic_model, build_model

DIGITS = DigitsData(classes=[3, 6], proportions=[0.8, 0.2])
MIXTURE = ClassMixtureData(proportions=[0.7, 0.3])
LOOP = LoopConfig(generations=2, n_real=20, n_synthetic=20, replicates=3)
MEASURES = [AnalyticEvaluation, ImageEvaluation]


def _reported(values) -> set[str]:
    """The metrics (the part before the slash) of a measurement's ``metric/group`` keys."""
    return {key.split("/", 1)[0] for key in values}


@pytest.mark.parametrize(
    ("data", "model"), [(GaussianData(), "gaussian"), (MIXTURE, "class_mixture")], ids=["gaussian", "class_mixture"]
)
def test_an_analytic_measure_reports_exactly_the_metrics_it_declares(data, model):
    fitted = build_analytic_model(AnalyticModelConfig(name=model), data=data, replicates=LOOP.replicates, n_real=LOOP.n_real)
    result = simulate(data=data, model=fitted, config=LOOP, seed=0, measure=AnalyticEvaluation(data).measure)
    assert _reported(result.records[-1].values) == set(AnalyticEvaluation.METRICS)


def test_an_image_measure_reports_exactly_the_metrics_it_declares():
    evaluation = ImageEvaluation.prepare(DIGITS, EvaluationConfig(samples=60, bootstrap=5, grid=0), conditional=True)
    torch.manual_seed(0)
    model = build_model(VAEConfig(hidden=[16], latent_dim=2), sample_shape=DIGITS.sample_shape, num_classes=2)
    train = DIGITS.draw(1, 40, generator=torch.Generator().manual_seed(0))
    measurement = evaluation.measure(model, train, torch.Generator().manual_seed(1))
    assert _reported(measurement.values) == set(ImageEvaluation.METRICS)
    assert set(measurement.intervals) <= set(measurement.values)


@pytest.mark.parametrize("measure", MEASURES, ids=lambda m: m.__name__)
@pytest.mark.parametrize("data", [GaussianData(), MIXTURE], ids=["one_group", "two_groups"])
def test_the_headline_metrics_are_declared_ones(measure, data):
    headline = measure.headline_metrics(data)
    assert headline and len(set(headline)) == len(headline)
    assert set(headline) <= set(measure.METRICS), set(headline) - set(measure.METRICS)


def test_one_gaussians_headline_is_its_fit_and_a_mixtures_leads_with_the_shares():
    assert AnalyticEvaluation.headline_metrics(GaussianData()) == ("w2_sq", "trace_cov", "mean_sq_err")
    assert AnalyticEvaluation.headline_metrics(MIXTURE)[:2] == ("share", "extinct")


@pytest.mark.parametrize(
    ("arm", "measure"),
    [
        (Arm("a", MIXTURE, AnalyticModelConfig(), LOOP), AnalyticEvaluation),
        (Arm("d", DIGITS, VAEConfig(), LOOP), ImageEvaluation),
    ],
    ids=["analytic", "images"],
)
def test_an_arms_measured_and_headline_metrics_are_its_measures_declaration(arm, measure):
    assert measured_metrics(arm) == tuple(measure.METRICS)
    assert headline_metrics(arm) == list(measure.headline_metrics(arm.data))


@pytest.mark.parametrize(
    ("metric", "bounds"),
    [
        pytest.param(metric, bounds, id=f"{measure.__name__}-{metric}")
        for measure in MEASURES
        for metric, bounds in measure.METRICS.items()
    ],
)
def test_a_declared_metric_gets_the_logit_interval_exactly_when_declared_in_zero_one(metric, bounds):
    """metrics.csv's row of a metric no measure gave an interval for: the logit-scale t-interval
    when the metric is declared (0, 1), the plain one otherwise (the two differ for these values)."""
    values = np.array([0.05, 0.1, 0.2, 0.4])
    record = GenerationRecord(0, {f"{metric}/a": values}, 0.0)
    [row] = record_rows("arm", record)
    summary = summarize_replicates(values)
    logit, plain = mean_interval(summary, bounded=True), mean_interval(summary, bounded=False)
    assert logit != plain
    assert (row["lo"], row["hi"]) == (logit if tuple(bounds) == (0, 1) else plain)
    assert in_unit_interval(metric) is (tuple(bounds) == (0, 1))


def test_the_unit_interval_metrics_are_the_declared_ones_and_the_curations_acceptance_rate():
    declared = {m for measure in MEASURES for m, bounds in measure.METRICS.items() if tuple(bounds) == (0, 1)}
    assert UNIT_INTERVAL_METRICS == declared | {"accept_rate"}


def test_unit_interval_metrics_reads_bounds_declared_in_zero_one():
    bounds = {"share": (0, 1), "listed": [0, 1], "distance": (0, None), "gap": (-1, 1), "score": (None, None)}
    assert unit_interval_metrics(bounds) == ["share", "listed"]
