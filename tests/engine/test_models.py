"""Model resolution and loading, including every broken-folder case a user can hit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scribe.engine import paths
from scribe.engine.catalog import available_models
from scribe.engine.errors import ModelError
from scribe.engine.models import load, resolve


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "copy"))


def test_loads_a_folder(tiny_model_dir: Path) -> None:
    loaded = load(str(tiny_model_dir))
    assert loaded.n_positions == 128
    assert loaded.tokenizer.eos_token_id == loaded.model.config.eos_token_id


def test_name_under_the_data_dir(tiny_model_dir: Path) -> None:
    shutil.copytree(tiny_model_dir, paths.models_dir() / "mine")
    assert resolve("mine") == paths.models_dir() / "mine"
    assert load("mine").name == "mine"
    assert [m.name for m in available_models() if m.where == "local"] == ["mine"]
    info = next(m for m in available_models() if m.name == "mine")
    assert info.context == 128 and info.parameters > 10_000 and info.size_bytes > 0


def test_default_model_comes_from_config(tiny_model_dir: Path) -> None:
    paths.config_dir().mkdir(parents=True)
    paths.config_file().write_text(f'default_model = "{tiny_model_dir}"\n', encoding="utf-8")
    assert resolve(None) == tiny_model_dir


def test_hub_id_offline_and_not_cached_names_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(paths.cache_dir() / "hf"))
    with pytest.raises(ModelError) as err:
        resolve("distilgpt2")
    assert "'distilgpt2'" in str(err.value) and "connect" in str(err.value)


def test_unknown_name_with_path_characters() -> None:
    with pytest.raises(ModelError, match="not found"):
        resolve("./no/such/model/here")


def test_folder_without_config(model_copy: Path) -> None:
    (model_copy / "config.json").unlink()
    with pytest.raises(ModelError, match="no config.json"):
        load(str(model_copy))


def test_truncated_weights_name_the_file(model_copy: Path) -> None:
    weights = model_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as err:
        load(str(model_copy))
    assert str(weights) in str(err.value) and "truncated" in str(err.value)


def test_garbage_weights_name_the_file(model_copy: Path) -> None:
    (model_copy / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(ModelError, match="model.safetensors"):
        load(str(model_copy))


def test_pickle_weights_are_refused(model_copy: Path) -> None:
    (model_copy / "model.safetensors").rename(model_copy / "pytorch_model.bin")
    with pytest.raises(ModelError, match="pickle"):
        load(str(model_copy))


def test_missing_tokenizer_files(model_copy: Path) -> None:
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        (model_copy / name).unlink(missing_ok=True)
    with pytest.raises(ModelError, match="tokenizer"):
        load(str(model_copy))


def test_not_a_causal_lm(model_copy: Path) -> None:
    config = json.loads((model_copy / "config.json").read_text())
    config.update(model_type="vit", architectures=["ViTModel"])
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="not a causal"):
        load(str(model_copy))


def test_a_file_is_not_a_model_folder(model_copy: Path) -> None:
    with pytest.raises(ModelError, match="not a model folder"):
        resolve(str(model_copy / "config.json"))
