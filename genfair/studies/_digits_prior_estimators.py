"""The estimators of the digits prior study, each a map from a labelled digit set to a
class-conditional VAE whose weights carry the class shares (``class_logits``):

- ``hyper_mle`` and ``ple_lam<lam>``: a hypernetwork H around the VAE, trained once as an
  *amortised estimator over the share prior*: every step draws ``sets_per_step`` fresh shares
  from the prior, then one set of a fresh size m per share (m uniform on ``set_size_range``),
  and minimises ``mean_b [NLL(X_b; H(X_b)) + lam D(H(X_b), H(Y_b))]``
  (``hypernets.PLEObjective.sets``; Mayer et al., Eq. 5, averaged over the sets; lam = 0 is
  ``hyper_mle``). H reads the images with their labels (for a conditional VAE the labels are
  part of the data: reading them is reading the data) and is given each set's size. After
  training H is frozen: an estimate is one forward pass, ``theta = H(X)``.
- ``refit``: maximum likelihood on the one set: the VAE's class shares in closed form (the
  set's own shares, the exact maximiser of the ``-log p(y)`` term; a class absent from the set
  gets logit ``log(1e-9)``), the rest by ``refit_steps`` Adam steps from a fresh initialisation.

Every estimate is a plain :class:`genfair.models.VAE` (H's estimate copied into a copy of the
target), so the study samples and measures every arm alike. :func:`draw_from` draws a labelled
set from a model, the labels from the model's own class shares (its weights), not from a label
policy.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping

import numpy as np
import torch

from genfair.data import Batch
from genfair.devices import multinomial
from genfair.hypernets import HyperNetwork, PLEConfig, PLEObjective
from genfair.models import VAE
from genfair.studies._amortised import AmortisedTraining
from genfair.studies._digits_prior_config import DigitsPriorConfig
from genfair.studies._share_prior import SharePriorSource
from genfair.training import take_step

__all__ = [
    "Estimator",
    "build_estimators",
    "build_hypernetwork",
    "build_vae",
    "draw_from",
    "hyper_estimate",
    "minority_weight",
    "refit",
    "train_amortised",
]

Estimator = Callable[[Batch, torch.Generator], VAE]
"""``(data (1, n, ...), generator) -> VAE``: an arm's estimate from one labelled set."""

_ABSENT_SHARE = 1e-9  # the refit's share of a class absent from its set (log 0 is not a weight)


def build_vae(config: DigitsPriorConfig) -> VAE:
    """The conditional VAE of the study (MLP, 8x8 digit images, two classes with learned shares)."""
    return VAE(sample_shape=(1, 8, 8), hidden=tuple(config.vae_hidden), latent_dim=config.latent_dim, num_classes=2)


def build_hypernetwork(config: DigitsPriorConfig, *, init_seed: int) -> HyperNetwork:
    """H around a fresh VAE (both initialised from ``init_seed``): one dense head per tensor,
    labels and each set's size given to the set encoder."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        target = build_vae(config)
        return HyperNetwork(
            target, sample_shape=(1, 8, 8), head="dense", num_classes=2, hidden=config.hidden,
            embedding_dim=config.embedding_dim, set_size_input=True,
        )  # fmt: skip


def train_amortised(
    hnet: HyperNetwork,
    source: SharePriorSource,
    config: DigitsPriorConfig,
    *,
    lam: float,
    data_generator: torch.Generator,
    ple_generator: torch.Generator,
) -> AmortisedTraining:
    """Train ``hnet`` over the prior in place, then freeze it (see the module docstring); Adam,
    cosine decay of ``lr`` to 0. ``data_generator`` draws the shares, sizes and sets,
    ``ple_generator`` the own samples Y and (one integer, under a forked global RNG) the noise the
    VAE draws without a generator."""
    objective = PLEObjective(PLEConfig(lam=lam))
    optimiser = torch.optim.Adam(hnet.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.steps)
    low, high = config.set_size_range
    nll, gap = [], []
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=ple_generator)))
        for step in range(config.steps):
            shares = source.shares(config.sets_per_step, generator=data_generator)  # fresh distributions
            m = int(torch.randint(low, high + 1, (1,), generator=data_generator))  # a fresh set size
            sets = source.draw_sets(shares, m, generator=data_generator)
            terms = objective.sets(hnet, sets.x, sets.y, generator=ple_generator)
            take_step(terms.total, optimiser, what=f"digits_prior hypernetwork (lam={lam:g})", step=step, steps=config.steps)
            schedule.step()
            nll.append(terms.nll.item())
            gap.append(terms.discrepancy.item())
    hnet.requires_grad_(False)
    tail = max(1, config.steps // 10)
    return AmortisedTraining(
        float(lam), config.steps, config.sets_per_step, float(np.mean(nll[-tail:])), float(np.mean(gap[-tail:])),
        time.perf_counter() - started,
    )


def build_estimators(config: DigitsPriorConfig, hypernetworks: Mapping[str, HyperNetwork]) -> dict[str, Estimator]:
    """``{arm: estimator}``: ``refit``, then each trained, frozen H applied as it is (one forward
    pass per estimate, never a training step)."""
    estimators: dict[str, Estimator] = {"refit": lambda data, generator: refit(data, config, generator=generator)}
    estimators.update({arm: (lambda data, _, h=hnet: hyper_estimate(h, data)) for arm, hnet in hypernetworks.items()})
    return estimators


@torch.no_grad()
def hyper_estimate(hnet: HyperNetwork, data: Batch) -> VAE:
    """``H(X)`` for the one set of ``data`` (``x (1, n, 1, 8, 8)``, ``y (1, n)``) as a VAE of
    its own (a copy of H's target holding the estimate); H is not changed."""
    weights = hnet(data.x[0], data.y[0])
    model = copy.deepcopy(hnet.target)
    for name, value in weights.items():
        model.get_parameter(name).copy_(value)
    return model.eval().requires_grad_(False)


def refit(data: Batch, config: DigitsPriorConfig, *, generator: torch.Generator) -> VAE:
    """Maximum likelihood on the one set of ``data`` (see the module docstring): a fresh VAE
    initialised, its minibatches drawn and its noise seeded from ``generator``."""
    init_seed, noise_seed = torch.randint(2**62, (2,), generator=generator).tolist()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = build_vae(config)
        counts = torch.bincount(data.y[0], minlength=2).to(torch.float32)
        with torch.no_grad():
            model.class_logits.copy_((counts / counts.sum()).clamp(min=_ABSENT_SHARE).log())
        model.class_logits.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        optimiser = torch.optim.Adam(params, lr=config.refit_lr)
        n = data.x.shape[1]
        batch = min(config.refit_batch, n)
        torch.manual_seed(noise_seed)
        for step in range(config.refit_steps):
            index = torch.randperm(n, generator=generator)[:batch]
            loss = model.loss(data.x[:, index], data.y[:, index]).mean()
            take_step(loss, optimiser, what="digits_prior refit", step=step, steps=config.refit_steps)
    return model.eval().requires_grad_(False)


@torch.no_grad()
def draw_from(model: VAE, n: int, *, generator: torch.Generator) -> Batch:
    """``n`` labelled images from ``model``: labels from its class shares ``softmax(class_logits)``
    (what ``model.sample(n)`` draws without labels), then images for them. ``(1, n, ...)``."""
    labels = multinomial(model.class_logits.softmax(-1)[None], n, generator=generator)  # (1, n)
    x = model.sample(n, labels=labels, generator=generator)
    return Batch(x, labels)


def minority_weight(model: VAE) -> float:
    """The model's own minority share, ``softmax(class_logits)[1]``."""
    return float(model.class_logits.softmax(-1)[1])
