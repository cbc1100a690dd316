"""The PLE objective: likelihood plus the weight discrepancy between real and own-sample estimates.

Mayer et al. (arXiv 2405.13977):
  Eq. (4)  maximise the likelihood of X subject to  E_{X,Y}[H(Y) - H(X)] = 0,  Y ~ p(.; H(X));
  Eq. (5)  relaxed:  NLL(X; H(X)) + lam * D(H(X), H(Y)).

Gradient path (the paper does not publish one; these are genfair's defaults and options):
  - D differentiates through both H(X) and H(Y), the same hypernetwork evaluated twice;
    ``detach_target`` stops the gradient through H(X) inside D (it still gets the NLL's).
  - Y is drawn with the model's ``rsample`` when it has one (genfair's
    ``ReparameterizedSampler``), so D also differentiates through the samples back into H(X);
    ``detach_samples`` (or a model without ``rsample``) treats Y as data.
  - Y has the classes of X (the same labels), so D compares within-class estimates.
  - ``sample_steps`` draws Y with that many steps of a ``SteppedSampler`` target's sampler (a
    diffusion model's reverse process) instead of its own number: p(.; H(X)) is then the
    distribution of the cheaper sampler, an approximation of the model's.

Discrepancy forms: ``"draw"``, ``D(H(X), H(Y))`` for one draw Y; ``"expectation"``, an unbiased
estimate of ``||E_Y[H(Y)] - H(X)||^2`` from two draws (see ``expected_discrepancy``). In
expectation the per-draw D is ``||E_Y[H(Y)] - H(X)||^2 + tr Var_Y[H(Y) | X]``: its second term
rewards an H of low variance, i.e. shrinkage. For a Gaussian's variance and estimators ``c SS``
(``SS = sum_i (x_i - mean)^2``): with the target detached the per-draw penalty's fixed point is
``c = 1/(n+1)`` (relative bias ``-2/(n+1)``); with gradients through H(X) too (the default) the
penalty alone decreases all the way to ``c -> 0``, and a constant H has D = 0. A fixed lam
therefore lands below the MLE's ``1/n``. The expectation form is minimised by Bessel's
``c = 1/(n-1)`` (bias 0), which a fixed lam approaches as lam grows; but a constant H also has
D = 0, and between the two the penalty is a barrier: on ``H_t = (1 - t) v0 + t Bessel``,
``E_Y[H_t(Y)] - H_t(X) = t (1 - t) (v0 - Bessel(X))``. Measured in the variance study
(``genfair experiment=variance_bias``: n = 10, sigma^2 log-uniform on [0.5, 2], MLE -0.10):
per-draw lam = 0.1 gives relative bias -0.14, lam = 1 -0.21, lam >= 10 a near-constant H;
expectation lam = 0.1 gives -0.08, lam = 1 -0.035, lam >= 10 a near-constant H (the residual
hypernetwork starts constant; ramping lam up from 0 over half the steps gave -0.02 at lam = 10).

Constraint forms: ``"penalty"`` (Eq. 5 with a fixed ``lam``) or ``"augmented_lagrangian"``, which
enforces Eq. (4), ``E_{X,Y}[H(Y) - H(X)] = 0`` (``lam`` and ``discrepancy`` then only choose the
reported D), by stochastic primal-dual steps on

    NLL + mu . c + rho / 2 * <c_A, c_B>,         mu <- mu + dual_lr * c  after every step,

with ``c (numel,)`` the mini-batch mean of ``H(Y) - H(X)`` per generated value, and ``c_A``,
``c_B`` the same mean over two disjoint halves of the sets (over two draws of Y when there is a
single set), so that ``<c_A, c_B>`` is an unbiased estimate of ``||E c||^2``. Two choices make it
work with stochastic mini-batches (Bertsekas 1982 for the deterministic method):

  - the quadratic uses two independent estimates: ``||c||^2`` of one noisy mini-batch mean is
    ``||E c||^2 + Var(c)``, and its variance part, like the per-draw D, rewards shrinkage;
  - the dual step ``dual_lr`` is its own, much smaller than ``rho``. The textbook update
    ``mu <- mu + rho c`` assumes exact minimisation between dual steps; after single SGD steps it
    makes ``mu`` a random walk of step ``rho * noise(c)``, tens of times the multiplier's
    solution, and the estimate overshoots (relative bias +0.08 at rho = 1 in the variance study,
    with +0.4 on small variances and -0.2 on large ones). With ``rho = 10`` the quadratic alone
    holds the constraint to about ``mu* / rho``; the multiplier removes the rest, and
    ``dual_lr`` from 0.01 to 0.2 gave the same result.

Measured in the variance study (1500 steps of 128 sets): ``rho = 10`` gives relative bias
+0.003 +- 0.002 (Bessel: 0), ``rho = 3`` -0.016 and ``rho = 30`` +0.015; ``rho = 1``
under-enforces (-0.03) and ``rho = 100`` drifts towards a constant H (+0.05 on average, +0.25 on
small variances and -0.16 on large ones), like a heavy expectation penalty. Eq. (4) is a single
average over data sets and their synthetic draws, in absolute units, so meeting it does not pin
each set's estimate: H may be biased up at one scale and down at another (about -0.025 to
+0.025 across the variance study's fourfold range of variances), and the synthetic sets, more
spread than the real ones, reach scales where H has no likelihood signal, so H's extrapolation
there counts too. With the encoder and head of the first genfair version (before the closing
LayerNorm and the chunk RMS norm), the same objective met Eq. (4) to +0.005 and left a relative
bias of -0.034 +- 0.002 on the data, with +0.5 on synthetic-only scales.

Data follow genfair's model protocol, ``x (R, n, *sample_shape)``: a ``per_replicate``
hypernetwork gives each of the R sets its own weights; otherwise R must be 1.

Amortised training (``PLEObjective.sets``): for a single-set target, B data sets
``(B, n, *sample_shape)`` in one call, the mean over the sets of each set's terms. Trained on one
data set, H has nothing to read (a constant fits as well); trained on many, Eq. (5)'s H(X) must
be an estimator of each set's weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._discrepancy import expected_discrepancy, weight_discrepancy
from ._errors import HyperNetworkError
from ._hypernetwork import HyperNetwork, Randomness
from ._options import PLEConfig
from ._protocols import ReparameterizedSampler, SteppedSampler

__all__ = ["PLEConfig", "PLEObjective", "PLETerms", "check_sample_steps", "predict_weights"]

@dataclass(frozen=True)
class PLETerms:
    """One evaluation of the objective: ``total`` (to minimise), its ``nll``, the ``discrepancy``
    D, for the augmented Lagrangian the constraint estimate ``c (numel,)`` (else ``None``), and
    the ``weights`` H(X) it was evaluated at (for further terms on the same graph); all are
    tensors on the autograd graph."""

    total: torch.Tensor
    nll: torch.Tensor
    discrepancy: torch.Tensor
    constraint: torch.Tensor | None
    weights: dict[str, torch.Tensor]


def predict_weights(hnet: HyperNetwork, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """``H(X)`` for data in the model layout ``(R, n, *sample_shape)`` (see the module docstring)."""
    if hnet.per_replicate:
        return hnet(x, labels)
    if x.shape[0] != 1:
        raise HyperNetworkError(
            f"x has {x.shape[0]} replicates; a hypernetwork without per_replicate takes one set, (1, n, ...)"
        )
    return hnet(x[0], None if labels is None else labels[0])


class PLEObjective:
    """``objective(hnet, x, labels, generator=g)`` -> :class:`PLETerms`; call
    :meth:`update_multiplier` after each optimiser step (a no-op for ``penalty``).

    Example:
        >>> objective = PLEObjective(PLEConfig(lam=0.1))
        >>> terms = objective(hnet, x, labels, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
        >>> terms.total.backward(); optimiser.step(); objective.update_multiplier(terms)  # doctest: +SKIP
    """

    def __init__(self, config: PLEConfig | None = None) -> None:
        self.config = config or PLEConfig()
        self.multiplier: torch.Tensor | None = None

    def __call__(
        self,
        hnet: HyperNetwork,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> PLETerms:
        """The terms at ``x (R, n, ...)``; ``reduce`` turns the per-sample losses ``(R, n)`` into
        the likelihood term (default: their mean; a fairness remedy's weighting otherwise)."""
        config = self.config
        weights = predict_weights(hnet, x, labels)
        model_labels = labels if labels is not None else torch.zeros(x.shape[:2], dtype=torch.int64, device=x.device)
        losses = hnet.run(weights, "loss", x, model_labels)
        nll = losses.mean() if reduce is None else reduce(losses)
        if config.lam == 0 and config.constraint == "penalty":
            return PLETerms(nll, nll, nll.new_zeros(()), None, weights)
        reference = {k: v.detach() for k, v in weights.items()} if config.detach_target else weights
        enforce = config.constraint == "augmented_lagrangian"
        single_set = hnet.flat(weights)[..., 0].numel() == 1
        draws = 2 if config.discrepancy == "expectation" or (enforce and single_set) else 1
        estimates = [predict_weights(hnet, self._draw(hnet, weights, x, model_labels, generator), labels) for _ in range(draws)]
        if config.discrepancy == "expectation":
            discrepancy = expected_discrepancy(reference, *estimates, normalize=config.normalize)
        else:
            discrepancy = weight_discrepancy(reference, estimates[0], normalize=config.normalize)
        return self._terms(hnet, nll, discrepancy, reference, estimates, weights)

    def sets(
        self,
        hnet: HyperNetwork,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
        vectorise: bool = True,
        randomness: Randomness = "different",
    ) -> PLETerms:
        """Amortised terms over ``B`` data sets of a single-set target (one without
        ``per_replicate``), ``x (B, n, *sample_shape)`` and ``labels (B, n)``:

            nll = mean_b NLL(X_b; H(X_b)),   D = mean_b D(H(X_b), H(Y_b)),   Y_b ~ p(.; H(X_b)),

        each ``Y_b`` with ``X_b``'s classes; ``total = nll + lam * D`` (Eq. 5 averaged over the
        sets), or the augmented Lagrangian with ``c`` averaged over the sets and its two halves.
        H maps the stacked sets to stacked weights in one call, and the target runs under the B
        weight sets through :meth:`HyperNetwork.run_each` (``vectorise``, ``randomness``: see
        there; ``randomness="same"`` gives every set the same noise, which makes the result
        comparable with B single-set calls from one generator state). ``reduce`` turns the
        per-sample losses ``(B, n)`` into the likelihood term (default: their mean, which is the
        mean over sets of each set's mean). ``weights`` of the result are ``{name: (B, *shape)}``."""
        if hnet.per_replicate:
            raise HyperNetworkError(
                "sets() takes data sets for a single-set target; a per_replicate hypernetwork's replicates are its sets: "
                "call the objective itself"
            )
        config = self.config

        def run(weights: dict[str, torch.Tensor], method: str, *args, **kwargs) -> torch.Tensor:
            return hnet.run_each(weights, method, *args, vectorise=vectorise, randomness=randomness, **kwargs)

        weights = hnet(x, labels)  # (B, ...): one set embedding per set
        model_labels = labels if labels is not None else torch.zeros(x.shape[:2], dtype=torch.int64, device=x.device)
        losses = run(weights, "loss", x[:, None], model_labels[:, None])[:, 0]  # (B, n)
        nll = losses.mean() if reduce is None else reduce(losses)
        if config.lam == 0 and config.constraint == "penalty":
            return PLETerms(nll, nll, nll.new_zeros(()), None, weights)
        reference = {k: v.detach() for k, v in weights.items()} if config.detach_target else weights
        enforce = config.constraint == "augmented_lagrangian"
        draws = 2 if config.discrepancy == "expectation" or (enforce and x.shape[0] == 1) else 1
        reparameterised = self._reparameterised(hnet)
        estimates = []
        for _ in range(draws):
            y = run(weights, "rsample" if reparameterised else "sample", x.shape[1], labels=model_labels[:, None], generator=generator,
                    **self._sample_options(hnet))[:, 0]
            estimates.append(hnet(y if reparameterised else y.detach(), labels))
        discrepancy = torch.stack([
            expected_discrepancy(_set(reference, b), *(_set(e, b) for e in estimates), normalize=config.normalize)
            if config.discrepancy == "expectation"
            else weight_discrepancy(_set(reference, b), _set(estimates[0], b), normalize=config.normalize)
            for b in range(x.shape[0])
        ]).mean()
        return self._terms(hnet, nll, discrepancy, reference, estimates, weights)

    def _terms(
        self,
        hnet: HyperNetwork,
        nll: torch.Tensor,
        discrepancy: torch.Tensor,
        reference: dict[str, torch.Tensor],
        estimates: list[dict[str, torch.Tensor]],
        weights: dict[str, torch.Tensor],
    ) -> PLETerms:
        """Eq. 5's ``nll + lam * D``, or Eq. 4's augmented Lagrangian ``nll + <mu, c> + rho/2 ||c||^2``."""
        if self.config.constraint != "augmented_lagrangian":
            return PLETerms(nll + self.config.lam * discrepancy, nll, discrepancy, None, weights)
        constraint, quadratic = self._constraint(hnet, reference, estimates)
        if self.multiplier is None:
            self.multiplier = torch.zeros_like(constraint.detach())
        total = nll + (self.multiplier * constraint).sum() + 0.5 * self.config.rho * quadratic
        return PLETerms(total, nll, discrepancy, constraint, weights)

    def _reparameterised(self, hnet: HyperNetwork) -> bool:
        """Whether Y is drawn with ``rsample`` (gradients through the samples) or as data."""
        return isinstance(hnet.target, ReparameterizedSampler) and not self.config.detach_samples

    def _sample_options(self, hnet: HyperNetwork) -> dict[str, int]:
        """The keyword arguments that draw Y with ``sample_steps`` (none when it is ``None``)."""
        steps = self.config.sample_steps
        if steps is None:
            return {}
        check_sample_steps(hnet.target, steps)
        return {"steps": steps}

    def update_multiplier(self, terms: PLETerms) -> None:
        """Dual ascent ``mu <- mu + dual_lr * c`` (augmented Lagrangian only)."""
        if terms.constraint is not None and self.multiplier is not None:
            self.multiplier = self.multiplier + self.config.dual_lr * terms.constraint.detach()

    def _draw(
        self,
        hnet: HyperNetwork,
        weights: dict[str, torch.Tensor],
        x: torch.Tensor,
        labels: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Y ~ p(.; H(X)), as many samples as X, with X's classes."""
        reparameterised = self._reparameterised(hnet)
        method = "rsample" if reparameterised else "sample"
        y = hnet.run(weights, method, x.shape[1], labels=labels, generator=generator, **self._sample_options(hnet))
        return y if reparameterised else y.detach()

    def _constraint(
        self, hnet: HyperNetwork, reference: dict[str, torch.Tensor], estimates: list[dict[str, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mini-batch estimate ``c (numel,)`` of E[H(Y) - H(X)], per value scaled as ``normalize``
        says and divided by ``sqrt(numel)``, and ``<c_A, c_B>``, an unbiased estimate of
        ``||E c||^2`` from two disjoint halves of the sets (from the two draws for a single set)."""
        gaps = torch.stack([hnet.flat(e) for e in estimates]) - hnet.flat(reference)  # (draws, *B, numel)
        gaps = gaps.reshape(gaps.shape[0], -1, gaps.shape[-1])  # (draws, sets, numel)
        if self.config.normalize == "relative":
            scale = torch.cat(
                [reference[slot.name].detach().square().mean().expand(slot.numel) for slot in hnet.layout.slots]
            )
            gaps = gaps / (scale.sqrt() + 1e-12)
        gaps = gaps / gaps.shape[-1] ** 0.5
        sets = gaps.shape[1]
        if sets >= 2:
            first, second = gaps[:, : sets // 2].mean((0, 1)), gaps[:, sets // 2 :].mean((0, 1))
        else:
            first, second = gaps[0, 0], gaps[1, 0]
        return gaps.mean((0, 1)), (first * second).sum()


def check_sample_steps(target: object, steps: int) -> None:
    """Refuse ``sample_steps=steps`` for a target that cannot draw Y in that many steps: one that
    is no :class:`SteppedSampler`, or whose sampler allows fewer steps."""
    if not isinstance(target, SteppedSampler):
        raise HyperNetworkError(
            f"sample_steps={steps}: {type(target).__name__} does not choose its sampler's steps (no SteppedSampler); "
            "allowed: sample_steps=None"
        )
    if steps > target.max_sample_steps:
        raise HyperNetworkError(
            f"sample_steps={steps}: {type(target).__name__}'s sampler takes at most {target.max_sample_steps} steps; "
            f"allowed: 1 to {target.max_sample_steps}, or None"
        )


def _set(weights: dict[str, torch.Tensor], b: int) -> dict[str, torch.Tensor]:
    """Weight set ``b`` of stacked weights ``{name: (B, *shape)}``."""
    return {name: value[b] for name, value in weights.items()}
