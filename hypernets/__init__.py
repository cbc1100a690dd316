"""Hypernetworks that predict a generative model's weights from its training data, and the
weight-discrepancy (PLE) regularizer (Mayer et al., arXiv 2405.13977).

Import name: ``genfair.hypernets``. The code lives in the repository's top-level folder
``hypernets/`` (the design card's layout) and installs inside genfair; the bare name
``hypernets`` is not importable. The package stands nearly alone: it imports torch, the
standard library and one module of genfair, ``genfair._lazy`` (the lazy-export mechanism every
genfair package shares, itself standard library only), never the rest of genfair
(``tests/test_packaging.py`` checks), and within itself only relatively. Bad arguments raise
:class:`HyperNetworkError` (a ``ValueError``) with a one-line message naming the argument.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from genfair.hypernets import HyperNetwork
    >>> target = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
    >>> hnet = HyperNetwork(target, sample_shape=(4,))
    >>> weights = hnet(torch.randn(32, 4))          # keyed like target.named_parameters()
    >>> sorted(weights) == sorted(name for name, _ in target.named_parameters())
    True
"""

from typing import TYPE_CHECKING

from genfair._lazy import lazy_exports

if TYPE_CHECKING:  # the public names, each imported on first use (genfair._lazy): no torch until then
    from ._discrepancy import expected_discrepancy, weight_discrepancy
    from ._encoder import SetEncoder
    from ._errors import HyperNetworkError
    from ._functional import call_method
    from ._heads import ChunkedHead, DenseHead, auto_chunk_size
    from ._hypernetwork import BoundModel, HyperNetwork, SizeReport
    from ._options import BUFFER_POLICIES, CONSTRAINTS, DISCREPANCIES, HEADS, NORMALIZATIONS, POSITIVITY, BufferPolicy, Head, Normalize, PLEConfig, Positivity
    from ._ple import PLEObjective, PLETerms, check_sample_steps, predict_weights
    from ._probe import input_sensitivity
    from ._protocols import ReparameterizedSampler, SteppedSampler
    from ._targets import TargetLayout, TensorSlot

__all__ = [
    "BUFFER_POLICIES",
    "CONSTRAINTS",
    "DISCREPANCIES",
    "HEADS",
    "NORMALIZATIONS",
    "POSITIVITY",
    "BoundModel",
    "BufferPolicy",
    "ChunkedHead",
    "DenseHead",
    "Head",
    "HyperNetwork",
    "HyperNetworkError",
    "Normalize",
    "PLEConfig",
    "PLEObjective",
    "PLETerms",
    "Positivity",
    "ReparameterizedSampler",
    "SetEncoder",
    "SizeReport",
    "SteppedSampler",
    "TargetLayout",
    "TensorSlot",
    "auto_chunk_size",
    "call_method",
    "check_sample_steps",
    "expected_discrepancy",
    "input_sensitivity",
    "predict_weights",
    "weight_discrepancy",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
