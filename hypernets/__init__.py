"""Hypernetworks that predict a generative model's weights from its training data, and the
weight-discrepancy (PLE) regularizer (Mayer et al., arXiv 2405.13977).

Not implemented yet: this package is reserved by the project layout and is filled by the
hypernetwork issue (#3). It exports nothing for now.
"""

__all__: list[str] = []
