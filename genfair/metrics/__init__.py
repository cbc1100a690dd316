"""Metrics of fidelity across generations, and their summaries across replicates."""

from genfair.metrics._gaussian import class_gaussian_metrics, gaussian_w2_sq
from genfair.metrics._summary import ReplicateSummary, summarize_replicates

__all__ = ["ReplicateSummary", "class_gaussian_metrics", "gaussian_w2_sq", "summarize_replicates"]
