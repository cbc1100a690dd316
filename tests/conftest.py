"""Test-session settings: one torch thread (fastest for these small batched ops on 2 cores), and
a session-wide cache for trained evaluation classifiers, so that tests never write to the
user's cache and each classifier trains once per session."""

import pytest
import torch

from _fixtures import skip_figures

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _classifier_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENFAIR_CACHE", str(tmp_path_factory.mktemp("genfair_cache")))
        yield


@pytest.fixture
def no_figures(monkeypatch):
    """A test's runs draw no figures (see :func:`_fixtures.skip_figures`); a file whose runs never
    need them says ``pytestmark = pytest.mark.usefixtures("no_figures")``."""
    skip_figures(monkeypatch)
