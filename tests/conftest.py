"""Shared fixtures: SCRIBE_HOME in a temp dir for every test, and tiny real models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import factory


@pytest.fixture(autouse=True)
def scribe_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("scribe-home")
    monkeypatch.setenv("SCRIBE_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return factory.tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def gpt2_vocab_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return factory.gpt2_vocab_model(tmp_path_factory.mktemp("gpt2-vocab-model"))
