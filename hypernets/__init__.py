"""Hypernetworks that predict a generative model's weights from its training data, and the
weight-discrepancy (PLE) regularizer (Mayer et al., arXiv 2405.13977).

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

from genfair.hypernets._heads import ChunkedHead, DenseHead, auto_chunk_size
from genfair.hypernets._hypernetwork import BUFFER_POLICIES, HEADS, BoundModel, BufferPolicy, Head, HyperNetwork, SizeReport
from genfair.hypernets._targets import POSITIVITY, Positivity, TargetLayout, TensorSlot
from genfair.hypernets._discrepancy import NORMALIZATIONS, Normalize, expected_discrepancy, weight_discrepancy
from genfair.hypernets._encoder import SetEncoder
from genfair.hypernets._functional import call_method
from genfair.hypernets._ple import PLEConfig, PLEObjective, PLETerms, predict_weights
from genfair.hypernets._probe import input_sensitivity

__all__ = [
    "BUFFER_POLICIES",
    "HEADS",
    "NORMALIZATIONS",
    "POSITIVITY",
    "BoundModel",
    "BufferPolicy",
    "ChunkedHead",
    "DenseHead",
    "Head",
    "HyperNetwork",
    "Normalize",
    "PLEConfig",
    "PLEObjective",
    "PLETerms",
    "Positivity",
    "SetEncoder",
    "SizeReport",
    "TargetLayout",
    "TensorSlot",
    "auto_chunk_size",
    "call_method",
    "expected_discrepancy",
    "input_sensitivity",
    "predict_weights",
    "weight_discrepancy",
]
