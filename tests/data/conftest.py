"""Fixtures for the data package tests.

The real corpora live in ``../shared/data`` beside the checkout (never in the
repository); tests that need them skip cleanly when that folder is absent.
Full IMDB and 20 Newsgroups loads take seconds, so each is loaded once per
session. :mod:`.builders` writes tiny distributions in the canonical layouts
for fast tests of the loaders' own logic.
"""

from __future__ import annotations

import pytest

from lugpi_cli.data import load_dataset

from .builders import shared_path


@pytest.fixture(autouse=True)
def _no_user_data(monkeypatch, tmp_path_factory):
    """Built-in data sets are never found by accident in the developer's own cache."""
    monkeypatch.delenv("LUGPI_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(scope="session")
def imdb_full() -> object:
    return load_dataset("imdb", data=shared_path("aclImdb_v1.tar.gz"))


@pytest.fixture(scope="session")
def newsgroups_full() -> object:
    return load_dataset("20newsgroups", data=shared_path("20news-bydate.tar.gz"))
