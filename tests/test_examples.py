"""The models of ``examples/`` (not part of genfair): each run end to end through ``genfair
model=custom`` on the digits, the protocol's refusals on the command line, and reference tests
of what each model and the adversarial fit compute.

The commands run from the repository root, where ``model._target_=examples.<file>.<Class>``
imports (the CLI searches the current directory after the installed packages), all at once in
the module-scoped fixture ``cli`` (one per CPU core, as in tests/test_cli.py); they are the
commands of docs/guides/wrapping-models.md, "Bring your own model".
"""

from __future__ import annotations

import csv
import math
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from _commands import run_commands

from genfair.data import Batch
from genfair.errors import ConfigError, GenerationFailed
from genfair.estimators import AdversarialFit, EstimatorConfig, build_fit
from genfair.loops import FitContext
from genfair.models import ModelCapabilities, load_model

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # examples/ is not installed: import it from the repository root, as the CLI does
    sys.path.insert(0, str(REPO))

from examples.autoregressive import MADE  # noqa: E402
from examples.flow import RealNVP  # noqa: E402
from examples.gan import GAN  # noqa: E402

BIN = Path(sys.executable).parent
GENFAIR = str(BIN / "genfair") if (BIN / "genfair").exists() else shutil.which("genfair")
# One chain of two generations of five Adam steps (so no paired comparison), a small
# evaluation; one process per run (workers=1).
TINY = [
    "loop.generations=2", "loop.n_real=60", "loop.n_synthetic=60", "estimator.steps=5",
    "evaluation.samples=100", "evaluation.bootstrap=10", "loop.replicates=1", "compare.baseline=null", "workers=1",
]
# {name: (overrides, arms)}: the models in the loop, each with the mle arm; the likelihood
# models also with a hypernetwork arm (a small one: estimator.hidden=16).
RUNS = {
    "flow": (
        ["model._target_=examples.flow.RealNVP", "+model.hidden=32",
         "arms={mle:{estimator.name:mle},ple:{estimator.name:ple}}", "estimator.hidden=16"],
        {"mle", "ple"},
    ),
    "autoregressive": (
        ["model._target_=examples.autoregressive.MADE", "+model.hidden=[32]",
         "arms={mle:{estimator.name:mle},hyper_mle:{estimator.name:hyper_mle}}", "estimator.hidden=16"],
        {"mle", "hyper_mle"},
    ),
    "gan": (["model._target_=examples.gan.GAN", "model.conditional=false", "loop.synthetic_labels=counts",
            "arms={mle:{estimator.name:mle}}"], {"mle"}),
}
CLASSES = {"flow": RealNVP, "autoregressive": MADE, "gan": GAN}
# Refused before any work: (overrides, words of the one line on stderr). "no_loss" runs in a
# folder holding the user's module (user_models.py below), the others from the repository root.
REFUSALS = {
    "missing_target": (["model._target_=examples.no_such_module.Model"], ["model._target_", "cannot import", "examples.no_such_module"]),
    "no_loss": (
        ["model._target_=user_models.OnlySamples", "model.conditional=false"],
        ["OnlySamples has no method 'loss'", "adversarial_losses"],
    ),
    "gan_ple": (
        ["model._target_=examples.gan.GAN", "model.conditional=false", "arms={ple:{estimator.name:ple}}"],
        ["estimator=ple needs a per-sample likelihood", "GAN", "use estimator=mle", "in arm 'ple'"],
    ),
}
USER_MODELS = '''
import torch
from torch import nn


class OnlySamples(nn.Module):
    """Samples, but no way to train: neither loss nor adversarial_losses."""

    num_classes = None

    def __init__(self, *, sample_shape):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        self.mean = nn.Parameter(torch.zeros(self.sample_shape))

    def sample(self, n, *, labels=None, generator=None):
        return self.mean.detach().expand(1, n, *self.sample_shape)
'''


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every command of this file at once: ``{name: (result, its run directory)}``."""
    root = tmp_path_factory.mktemp("examples")
    user = root / "user"
    user.mkdir()
    (user / "user_models.py").write_text(USER_MODELS)
    jobs = {}
    for name, (overrides, _) in RUNS.items():
        jobs[name] = ([GENFAIR, "model=custom", *overrides, *TINY, f"hydra.run.dir={root / name}"], REPO, root / name)
    for name, (overrides, _) in REFUSALS.items():
        cwd = user if name == "no_loss" else REPO
        jobs[name] = ([GENFAIR, "model=custom", *overrides, *TINY, f"hydra.run.dir={root / name}"], cwd, root / name)
    results = run_commands({name: (command, cwd) for name, (command, cwd, _) in jobs.items()}, timeout=600)
    return {name: (results[name], run) for name, (_, _, run) in jobs.items()}


# ----------------------------------------------------------------------------- through the CLI
@pytest.mark.parametrize("name", list(RUNS))
def test_example_model_runs_the_loop_and_its_last_model_reloads(cli, name):
    result, run = cli[name]
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr
    with open(run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    arms = RUNS[name][1]
    assert {r["arm"] for r in rows} == arms
    for arm in arms:
        assert {r["generation"] for r in rows if r["arm"] == arm} == {"0", "1"}, arm
        assert all(math.isfinite(float(r["mean"])) for r in rows if r["arm"] == arm and r["metric"] == "share")
        model = load_model(run / "arms" / arm / "model")
        assert type(model) is CLASSES[name], arm
        samples = model.sample(4, generator=torch.Generator().manual_seed(0))
        assert samples.shape == (1, 4, 1, 8, 8) and bool(torch.isfinite(samples).all()), arm
        if name != "gan":
            labels = torch.tensor([[0, 1, 0, 1]])
            assert bool(torch.isfinite(model.loss(model.sample(4, labels=labels), labels)).all()), arm


@pytest.mark.parametrize("name", list(REFUSALS))
def test_protocol_refusal_exits_2_with_one_line_and_writes_nothing(cli, name):
    result, run = cli[name]
    stderr = result.stderr.strip()
    assert result.returncode == 2, stderr
    assert stderr.startswith("genfair: error: ") and len(stderr.splitlines()) == 1, stderr
    for word in REFUSALS[name][1]:
        assert word in stderr, f"{word!r} not in {stderr!r}"
    # Hydra creates the run directory and an empty job log before the app starts; nothing else.
    left = {p.name: p.stat().st_size for p in run.iterdir()} if run.exists() else {}
    assert set(left) <= {"genfair.log"} and not any(left.values()), left


def test_the_guide_shows_the_commands_these_tests_run():
    """docs/guides/wrapping-models.md, "Bring your own model", shows each run's command exactly
    (without hydra.run.dir), lines joined at their trailing backslashes."""
    page = (REPO / "docs" / "guides" / "wrapping-models.md").read_text()
    shown = " ".join(page.replace("\\\n", " ").split())
    for name, (overrides, _) in RUNS.items():
        command = shlex.join(["genfair", "model=custom", *overrides, *TINY])
        assert command in shown, f"{name}: {command}"


# --------------------------------------------------------------------------------- the flow
def _randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` in float64 with every parameter drawn from N(0, 0.5^2) (the examples start some
    layers at zero, where a wrong Jacobian term would still vanish)."""
    model = model.double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return model


def test_flow_log_likelihood_is_the_change_of_variables_formula():
    """log p(x, c) = log N(f(x); 0, I) + log |det J_f(x)| + log p(c), the determinant of the
    whole map's Jacobian taken by autograd, not from the couplings' formula."""
    flow = _randomised(RealNVP(sample_shape=(6,), couplings=3, hidden=8, num_classes=2))
    x = torch.rand(1, 4, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    labels = torch.tensor([[0, 1, 1, 0]])
    expected = []
    for i in range(4):
        label = labels[0, i : i + 1]
        jacobian = torch.autograd.functional.jacobian(lambda v: flow(v[None], label)[0][0], x[0, i])
        log_det = torch.linalg.slogdet(jacobian).logabsdet
        assert abs(float(log_det)) > 0.1  # a map far from volume-preserving
        z = flow(x[0, i][None], label)[0][0]
        log_base = -0.5 * (z.square().sum() + 6 * math.log(2 * math.pi))
        expected.append(log_base + log_det + flow.class_logits.log_softmax(-1)[label[0]])
    torch.testing.assert_close(-flow.loss(x, labels), torch.stack(expected)[None], rtol=0, atol=1e-10)


def test_flow_samples_invert_its_transform():
    """sample draws z from the generator and returns f^-1(z): f of the samples is that z."""
    flow = _randomised(RealNVP(sample_shape=(6,), couplings=4, hidden=8, num_classes=2))
    labels = torch.tensor([[1, 0, 1]])
    generator = torch.Generator().manual_seed(3)
    z = torch.randn(3, 6, generator=generator.clone_state(), dtype=torch.float64)
    x = flow.sample(3, labels=labels, generator=generator)
    torch.testing.assert_close(flow(x[0], labels[0])[0], z, rtol=0, atol=1e-9)


# ------------------------------------------------------------------------- the autoregressive model
def test_autoregressive_conditionals_depend_only_on_earlier_values():
    """The Jacobian of every conditional's mean and scale with respect to x is strictly lower
    triangular: p(x_d | ...) sees x_<d only (and not nothing: the lower triangle is not zero)."""
    made = _randomised(MADE(sample_shape=(5,), hidden=(7, 6), num_classes=2))
    x = torch.rand(5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    label = torch.tensor([1])
    for output in (0, 1):  # mean, scale
        jacobian = torch.autograd.functional.jacobian(lambda v: made.conditionals(v[None], label)[output][0], x)
        assert torch.equal(jacobian.triu(), torch.zeros_like(jacobian)), jacobian
        assert bool((jacobian.tril(-1) != 0).any()), jacobian


def test_autoregressive_samples_are_drawn_from_its_conditionals():
    """x_d = mu_d(x_<d) + sigma_d(x_<d) * eps_d with eps the generator's normal draws, so the
    standardised samples are those draws; the loss is the sum of the D Gaussian log densities."""
    made = _randomised(MADE(sample_shape=(5,), hidden=(9,), num_classes=2))
    labels = torch.tensor([[0, 1, 1, 0]])
    generator = torch.Generator().manual_seed(2)
    eps = torch.randn(4, 5, generator=generator.clone_state(), dtype=torch.float64)
    x = made.sample(4, labels=labels, generator=generator)
    mean, scale = made.conditionals(x[0], labels[0])
    torch.testing.assert_close((x[0] - mean) / scale, eps, rtol=0, atol=1e-9)
    log_p = torch.distributions.Normal(mean, scale).log_prob(x[0]).sum(-1) + made.class_logits.log_softmax(-1)[labels[0]]
    torch.testing.assert_close(-made.loss(x, labels), log_p[None], rtol=0, atol=1e-10)


# ------------------------------------------------------------------------------ the adversarial fit
class _Players(nn.Module):
    """Two one-weight players whose losses a test sets: ``losses(g, d, other)`` -> the dict;
    ``other``: an optional parameter outside both players."""

    num_classes = None

    def __init__(self, losses, *, g: float = 0.0, d: float = 0.0, stray: bool = False, shared: bool = False) -> None:
        super().__init__()
        self.generator = nn.Linear(1, 1, bias=False)
        self.discriminator = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.generator.weight.fill_(g)
            self.discriminator.weight.fill_(d)
        if shared:  # one weight registered in both players
            self.discriminator.tied = self.generator.weight
        self.stray = nn.Parameter(torch.zeros(1)) if stray else None
        self._losses = losses

    def adversarial_losses(self, x, labels=None, *, generator=None):
        return self._losses(self.generator.weight.sum(), self.discriminator.weight.sum())

    def sample(self, n, *, labels=None, generator=None):
        return torch.zeros(1, n, 1)


def _train(n: int = 8) -> Batch:
    return Batch(torch.rand(1, n, 1, generator=torch.Generator().manual_seed(0)), torch.zeros(1, n, dtype=torch.long))


def _fit(model: nn.Module, *, steps: int = 1, lr: float = 1e-3, checkpoint=None) -> nn.Module:
    fit = build_fit(
        EstimatorConfig(name="mle", steps=steps, lr=lr), sample_shape=(1,),
        model=ModelCapabilities(positive={}, per_replicate=False, closed_form=False, adversarial=True, num_classes=None),
    )
    assert isinstance(fit, AdversarialFit)
    return fit(model, _train(), torch.Generator().manual_seed(0), FitContext(0, None, checkpoint))


@pytest.mark.parametrize("trained", ["generator", "discriminator"])
def test_adversarial_fit_steps_each_player_on_its_own_loss_only(trained):
    """Both losses depend on both players' weights; only ``trained``'s loss has a gradient with
    respect to its own weight, so only that player moves (by lr on Adam's first step)."""
    def losses(g, d):
        coupled = (g - 1.0) * (d - 2.0)  # moves both players if differentiated with respect to both
        flat = 0.0 * g * d  # depends on both, gradient zero
        return {"generator": coupled if trained == "generator" else flat + d, "discriminator": coupled if trained == "discriminator" else flat + g}

    model = _fit(_Players(losses))
    moved = {"generator": float(model.generator.weight.detach()), "discriminator": float(model.discriminator.weight.detach())}
    other = "discriminator" if trained == "generator" else "generator"
    assert moved[other] == 0.0, moved
    assert moved[trained] == pytest.approx(1e-3, rel=1e-4), moved  # -lr * sign(gradient); the gradient is -2 or -1


def test_adversarial_fit_steps_every_player_at_once():
    """Every gradient is taken before any weight moves: the generator's gradient is d at d's old
    value 0.0005 (so g falls by lr), not at d after the discriminator's step (-0.0005: g would rise)."""
    model = _fit(_Players(lambda g, d: {"discriminator": d, "generator": g * d}, d=0.0005))
    assert float(model.discriminator.weight.detach()) == pytest.approx(-0.0005, abs=1e-7)
    assert float(model.generator.weight.detach()) == pytest.approx(-1e-3, rel=1e-4)


@pytest.mark.parametrize(
    ("model", "words"),
    [
        pytest.param(_Players(lambda g, d: {"generator": g, "discriminator": d}, stray=True), ["['stray']", "belong to none"], id="stray"),
        pytest.param(_Players(lambda g, d: {"generator": g, "discriminator": d}, shared=True), ["in both", "'generator'", "'discriminator'"], id="shared"),
        pytest.param(_Players(lambda g, d: {"generator": g, "critic": d}), ["'critic' must name a submodule", "discriminator"], id="unknown"),
        pytest.param(_Players(lambda g, d: {"generator": g}), ["'discriminator.weight'", "belong to none"], id="missing"),
        pytest.param(_Players(lambda g, d: {"generator": g.expand(2), "discriminator": d}), ["'generator' must be a scalar", "(2,)"], id="not-scalar"),
        pytest.param(_Players(lambda g, d: {"generator": d, "discriminator": d}), ["'generator' does not depend on any parameter"], id="unused"),
    ],
)
def test_adversarial_fit_refuses_players_that_do_not_own_every_parameter_once(model, words):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError) as refused:
        _fit(model)
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and message.startswith("_Players.adversarial_losses"), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # refused before any step


def test_adversarial_fit_names_the_player_and_step_of_a_nan_loss():
    steps = iter(range(10))

    def losses(g, d):
        return {"generator": g * d, "discriminator": d + (float("nan") if next(steps) == 1 else 0.0)}

    with pytest.raises(GenerationFailed) as raised:
        _fit(_Players(losses, g=1.0, d=1.0), steps=3)
    assert raised.value.reason == "estimator mle: discriminator loss is nan at step 2 of 3"


def test_adversarial_fit_refuses_other_estimators_and_remedies():
    from genfair.remedies import RemedyConfig

    with pytest.raises(ConfigError, match="estimator=ple needs a per-sample likelihood"):
        AdversarialFit(EstimatorConfig(name="ple"))
    with pytest.raises(ConfigError, match="remedy=reweight reweights per-sample losses"):
        AdversarialFit(EstimatorConfig(name="mle"), remedy=RemedyConfig(name="reweight"))


class _Killed(Exception):
    pass


class _MemoryCheckpoint:
    """A ``FitCheckpoint`` in memory that can stop the fit right after saving step ``kill_after``."""

    every = 2

    def __init__(self) -> None:
        self.saved, self.kill_after = None, None

    def load(self):
        return self.saved

    def save(self, step, tensors):
        self.saved = (step, {key: value.clone() for key, value in tensors.items()})
        if step == self.kill_after:
            raise _Killed


class _CountingGAN(GAN):
    """The example GAN, counting the steps it is trained for."""

    def __init__(self) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            super().__init__(sample_shape=(1,), latent_dim=2, hidden=4)
        self.steps = 0

    def adversarial_losses(self, x, labels=None, *, generator=None):
        self.steps += 1
        return super().adversarial_losses(x, labels, generator=generator)


def test_adversarial_fit_killed_inside_a_generation_resumes_bitwise():
    """The GAN killed after step 4 of 7 and restarted from its checkpoint takes steps 5 to 7 only
    and ends where an uninterrupted fit ends: weights, Adam's moments and the generator's noise
    all restored."""
    gan = _CountingGAN
    whole = _fit(gan(), steps=7, lr=0.05)
    checkpoint = _MemoryCheckpoint()
    checkpoint.kill_after = 4
    with pytest.raises(_Killed):
        _fit(gan(), steps=7, lr=0.05, checkpoint=checkpoint)
    checkpoint.kill_after = None
    resumed = _fit(gan(), steps=7, lr=0.05, checkpoint=checkpoint)
    assert resumed.steps == 3 and checkpoint.saved[0] == 6
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert not torch.equal(whole.state_dict()["generator.0.weight"], gan().state_dict()["generator.0.weight"])
