"""Model resolution and loading, including every broken-folder case a user can hit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scribe.engine import paths
from scribe.engine.errors import ConfigError, ModelError
from scribe.engine.runtime.catalog import available_models
from scribe.engine.runtime.model_files import resolve
from scribe.engine.runtime.models import load


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


def write_config(text: str) -> None:
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(text, encoding="utf-8")


def test_precision_per_model_from_config_and_card(tiny_model_dir: Path) -> None:
    """A tiny model's "auto" is fp32; config.toml's [precision] table, keyed by the name a model
    is called by (or its folder's name), and then the model's card can choose otherwise."""
    shutil.copytree(tiny_model_dir, paths.models_dir() / "mine")
    assert load("mine", precision="auto").precision == "fp32"
    write_config('[precision]\nmine = "int8"\n')
    assert load("mine", precision="auto").precision == "int8"
    assert load(str(paths.models_dir() / "mine"), precision="auto").precision == "int8"
    assert load("mine", precision="bf16").precision == "bf16"  # the command line wins
    write_config("")
    card = paths.models_dir() / "mine" / "scribe.json"
    card.write_text(json.dumps({"precision": "int4"}), encoding="utf-8")
    assert load("mine", precision="auto").precision == "int4"
    write_config('[precision]\nmine = "fp32"\n')  # the user's config wins over the card
    assert load("mine", precision="auto").precision == "fp32"


def test_bad_precision_in_config_or_card_names_the_file(tiny_model_dir: Path) -> None:
    write_config('[precision]\ngpt2 = "int3"\n')
    with pytest.raises(ConfigError, match=r"config.toml: precision for 'gpt2' is 'int3'"):
        load(str(tiny_model_dir), precision="auto")
    write_config("")
    mine = Path(shutil.copytree(tiny_model_dir, paths.models_dir() / "mine"))
    (mine / "scribe.json").write_text(json.dumps({"precision": 8}), encoding="utf-8")
    with pytest.raises(ModelError, match=r"scribe.json: precision 8 is not one of"):
        load("mine", precision="auto")
