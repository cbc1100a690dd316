"""The settings of a self-consuming loop."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genfair.errors import ConfigError, check_choice, check_number, check_positive_int, check_unit_interval
from genfair.loops import _registry
from genfair.targets import check_target

__all__ = [
    "CURATION_RULES",
    "LABEL_POLICIES",
    "LOOP_KINDS",
    "CurationConfig",
    "LoopConfig",
]

# The built-in kinds: those configs/loop/ registers (genfair.loops._registry), sorted by name.
LOOP_KINDS: tuple[str, ...] = tuple(_registry.registered_kinds())
LABEL_POLICIES: tuple[str, ...] = ("counts", "real_shares", "balanced", "shares")
CURATION_RULES: tuple[str, ...] = ("none", "agreement", "confidence", "top_fraction")
CAP_ACTIONS: tuple[str, ...] = ("mark", "fail")


@dataclass
class CurationConfig:
    """A verifier between sampling and retraining (``loop.curation.*``; see ``genfair.loops._curation``).

    The verifier judges each synthetic sample against the class it was drawn for and returns a
    predicted class and a score in [0, 1] (a classifier: its softmax probability of that class;
    the analytic models' Gaussian verifier: the chi-square tail probability of the sample's
    Mahalanobis radius around its class's fitted mean). Rules:

      - ``none``: keep every sample (no verifier);
      - ``agreement``: keep samples whose predicted class is the class they were drawn for;
      - ``confidence``: keep samples whose score is >= ``threshold`` (for the Gaussian verifier:
        samples within radius c of the fitted mean, P(chi2_d >= c^2) = threshold: truncation);
      - ``top_fraction``: keep the ``fraction`` of each class's samples with the highest scores.

    Attributes:
        rule: one of :data:`CURATION_RULES`.
        threshold: the ``confidence`` rule's score threshold, in (0, 1).
        fraction: the ``top_fraction`` rule's share kept per class, in (0, 1].
        redraw: draw again for the rejected samples' classes until ``loop.n_synthetic`` are kept
            (``top_fraction``: draw ceil(1 / fraction) samples per kept one and keep the best),
            so the class counts are those the label policy chose; ``false``: train on the kept
            samples only (fewer than ``n_synthetic``; needs a model with one replicate, as the
            deep models' chains have).
        max_draws: at most this many draws per synthetic sample (rounds of ``n_synthetic``).
        on_cap: when ``max_draws`` rounds leave samples unaccepted: ``mark`` keeps their last
            draw and counts them in ``unverified/all`` of metrics.csv; ``fail`` stops the arm
            (a failed generation, one line).
        verifier_seed, verifier_width: the deep models' verifier is the evaluation classifier's
            design (``evaluation.classifier``) trained on the same real training pool with
            this seed and first-layer width (a different initialisation, batch order and
            architecture: the lab never filters and measures with the same network), cached
            under its own key. Unused by the analytic models.
    """

    rule: str = "none"
    threshold: float = 0.5
    fraction: float = 0.5
    redraw: bool = True
    max_draws: int = 10
    on_cap: str = "mark"
    verifier_seed: int = 1
    verifier_width: int = 8

    def __post_init__(self) -> None:
        check_choice("curation.rule", self.rule, CURATION_RULES)
        check_number("curation.threshold", self.threshold, above=0, below=1)
        check_number("curation.fraction", self.fraction, above=0, at_most=1)
        if not isinstance(self.redraw, bool):
            raise ConfigError(f"curation.redraw must be true or false, got {self.redraw!r}")
        check_positive_int("curation.max_draws", self.max_draws)
        check_choice("curation.on_cap", self.on_cap, CAP_ACTIONS)
        check_positive_int("curation.verifier_seed", self.verifier_seed, minimum=0)
        check_positive_int("curation.verifier_width", self.verifier_width)
        if self.rule == "top_fraction" and self.redraw and self.rounds > self.max_draws:
            raise ConfigError(
                f"curation.fraction={self.fraction} with redraw keeps 1 of {self.rounds} draws, more than "
                f"max_draws={self.max_draws} allows: raise max_draws to {self.rounds} or the fraction"
            )

    @property
    def rounds(self) -> int:
        """Draws per kept sample of ``top_fraction`` with ``redraw``: ceil(1 / fraction)."""
        return math.ceil(1.0 / self.fraction - 1e-9)


@dataclass
class LoopConfig:
    """A self-consuming loop (Alemohammad et al. 2024; Gerstgrasser et al. 2024 for accumulate).

    Generation 0 trains on ``n_real`` real samples. Generation g >= 1 trains on what the loop
    kind's rule composes (:class:`~genfair.loops.TrainingSetRule`). The built-in kinds
    (:data:`LOOP_KINDS`, each registered by ``configs/loop/<kind>.yaml``, which names its rule):
      - ``fully_synthetic``: ``n_synthetic`` samples of generation g-1's model;
      - ``augment``: generation 0's real set plus ``n_synthetic`` samples of generation g-1;
      - ``fresh``: a new draw of ``n_real`` real samples plus ``n_synthetic`` samples of g-1;
      - ``accumulate``: generation 0's real set plus every synthetic set drawn so far
        (``n_real + g * n_synthetic`` samples);
      - ``custom`` (or any other name, with ``training_set``): what a user's rule composes.

    Args:
        kind: the loop kind's name. A built-in kind (one of :data:`LOOP_KINDS`) picks its
            registered rule: ``training_set`` becomes the node of its YAML (so ``loop.kind=accumulate``
            over ``loop=fully_synthetic`` runs accumulate). Any other name (``custom``) is a label
            for the rule that ``training_set`` names.
        generations: number of generations, counting generation 0.
        n_real: real samples per draw.
        n_synthetic: synthetic samples drawn from each generation's model.
        sampling_bias: lambda in (0, 1]; 1 samples the model as it is (for a Gaussian,
            samples come from N(mu, lambda * Sigma)).
        replicates: independent chains run together.
        synthetic_labels: the classes of the synthetic samples of each generation (the label
            policy): ``counts`` draws them from the class shares of the generation's training
            set (Wright-Fisher drift: a minority fades and is lost); ``real_shares`` gives each
            class exactly ``stratified_counts(n_synthetic, shares of generation 0's real set)``
            samples; ``balanced`` equal shares (stratified); ``shares`` the shares of
            ``synthetic_shares`` (stratified). Only ``counts`` suits an unconditional model,
            whose samples carry no class until a labeller assigns one.
        synthetic_shares: with ``synthetic_labels=shares``, one share per class in (0, 1],
            summing to 1 (a YAML list, ``loop.synthetic_shares=[0.5,0.5]``); else ``None``.
        curation: the verifier step between sampling and retraining (:class:`CurationConfig`).
        training_set: ``{_target_: package.module.Name, <argument>: value, ...}``: the class or
            function that builds the loop kind's rule, a :class:`~genfair.loops.TrainingSetRule`
            (how each generation's training set is composed). A built-in kind's is its YAML's
            (``None`` is filled in with it); a user's kind needs one.
        checkpoint_every: a fit trained by gradient steps (the deep models', the hypernetworks')
            saves the generation in progress every this many steps into the run directory
            (``arms/<arm>/in_progress/``), and a killed run restarts the generation from there,
            ending with the same results; ``None`` (default): only finished generations are saved.
            It does not change the results, so a run may be resumed with another value.
    """

    kind: str = "fully_synthetic"
    generations: int = 10
    n_real: int = 100
    n_synthetic: int = 100
    sampling_bias: float = 1.0
    replicates: int = 100
    checkpoint_every: int | None = None
    synthetic_labels: str = "counts"
    synthetic_shares: list[float] | None = None
    curation: CurationConfig = field(default_factory=CurationConfig)
    training_set: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.training_set = _rule_node(self.kind, self.training_set)
        check_positive_int("generations", self.generations)
        check_positive_int("n_real", self.n_real)
        check_positive_int("n_synthetic", self.n_synthetic)
        check_unit_interval("sampling_bias", self.sampling_bias)
        check_positive_int("replicates", self.replicates)
        if self.checkpoint_every is not None:
            check_positive_int("checkpoint_every", self.checkpoint_every)
        check_choice("synthetic_labels", self.synthetic_labels, LABEL_POLICIES)
        if self.synthetic_labels == "shares":
            shares = self.synthetic_shares
            if not isinstance(shares, (list, tuple)) or not shares or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in shares
            ) or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
                raise ConfigError(
                    f"synthetic_shares must be one share in (0, 1] per class, summing to 1 "
                    f"(synthetic_labels=shares), got {_shown(shares)}"
                )
            self.synthetic_shares = [float(v) for v in shares]
        elif self.synthetic_shares is not None:
            raise ConfigError(
                f"synthetic_shares={_shown(self.synthetic_shares)} is used only with synthetic_labels=shares, "
                f"got synthetic_labels={self.synthetic_labels!r}"
            )
        if isinstance(self.curation, dict):  # a notebook may pass the node as a mapping
            self.curation = CurationConfig(**self.curation)

    @property
    def built_in(self) -> bool:
        """Whether the kind is a built-in one (its rule is its registered YAML's)."""
        return self.kind in _registry.registered_kinds()

    def check_classes(self, num_classes: int) -> None:
        """Refuse ``synthetic_shares`` that do not give one share to each of ``num_classes``
        classes (the data's), before any work."""
        if self.synthetic_labels == "shares" and len(self.synthetic_shares) != num_classes:
            raise ConfigError(
                f"loop.synthetic_shares must give one share to each of the data's {num_classes} classes, "
                f"got {len(self.synthetic_shares)}: {self.synthetic_shares}"
            )


def _rule_node(kind: object, node: object) -> dict[str, Any]:
    """The ``training_set`` node that ``kind`` runs: a built-in kind's registered node, else
    ``node`` (a user's rule), checked. A built-in kind with a node of another built-in kind takes
    its own (an override ``loop.kind=augment`` leaves the group's ``loop=fully_synthetic`` node
    behind); with a node of a user's rule it is refused, as is a user's kind without one or with
    a built-in kind's node (``loop.kind=bogus`` over ``loop=fully_synthetic``: a typo)."""
    kinds = _registry.registered_kinds()
    if kind in kinds:
        if node is None or _plain(node) in kinds.values():
            return dict(kinds[kind])
        raise ConfigError(
            f"kind={kind} is a built-in loop kind with its own rule ({kinds[kind]['_target_']}), got "
            f"training_set={_plain(node)!r}; a rule of your own runs with kind=custom"
        )
    if node is None or not isinstance(kind, str) or _plain(node) in kinds.values():
        # a typo of a built-in kind (over the node its group file left behind): refused, naming them
        check_choice("kind", kind, (*kinds, "custom"))
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise ConfigError(
            f"kind={kind} needs training_set={{_target_: package.module.Name, ...}} (the loop kind's rule), "
            f"got {node!r}; built-in kinds: {list(kinds)}"
        )
    check_target("training_set._target_", node["_target_"])
    return _plain(node)


def _plain(node: object) -> object:
    """A mapping node as a plain dict (an OmegaConf DictConfig compares as one too)."""
    return dict(node) if isinstance(node, Mapping) else node


def _shown(value: object) -> object:
    """A config list as a plain list (an OmegaConf ListConfig prints as one too)."""
    return list(value) if isinstance(value, (list, tuple)) else value
