"""Test-session settings: one torch thread (fastest for these small batched ops on 2 cores)."""

import torch

torch.set_num_threads(1)
