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


def test_the_card_is_typed_and_keeps_every_key_on_rewrite(tmp_path: Path) -> None:
    from scribe.engine.runtime.model_card import read_card, write_card

    data = {
        "name": "mine",
        "base_model": "gpt2",
        "precision": "int8",
        "chat": {"user": "U: {content}"},
        "fim": {"format": "psm", "prefix": "<p>", "suffix": "<s>", "middle": "<m>", "rate": 0.5},
        "metrics": {"test_perplexity_after": 12.0, "nan": float("nan")},
        "training": {"epochs": 2},
    }
    write_card(tmp_path, data)
    card = read_card(tmp_path)
    assert card.base_model == "gpt2" and card.precision == "int8"
    assert card.fim is not None and card.fim.markers == ("<p>", "<s>", "<m>")
    assert card.chat == {"user": "U: {content}"} and card.get("name") == "mine"
    write_card(tmp_path, card)
    data["metrics"]["nan"] = None  # strict JSON: a NaN is written as null
    assert json.loads((tmp_path / "scribe.json").read_text(encoding="utf-8")) == data
    assert read_card(tmp_path / "none").as_dict() == {}


def test_one_fim_parser_for_the_generator_and_the_editor() -> None:
    from scribe.engine.runtime.model_card import ModelCard, parse_fim
    from scribe.plugins.servers.completion_prompt import FimFormat

    def encode(text: str) -> list[int]:
        return [ord(c) for c in text]  # one token per character

    assert parse_fim({"prefix": "a", "suffix": "b"}) is None  # all three, or none
    assert parse_fim({"prefix": "a", "suffix": "b", "middle": ""}) is None
    fim = parse_fim({"prefix": "a", "suffix": "b", "middle": "c"})
    assert fim is not None and fim.token_ids(encode) == [97, 98, 99]
    assert parse_fim({"prefix": "ab", "suffix": "b", "middle": "c"}).token_ids(encode) is None
    card = ModelCard.from_dict({"fim": {"prefix": "a", "suffix": "b", "middle": "c"}})
    assert FimFormat.from_card(card, encode) == FimFormat("a", "b", "c")
    assert FimFormat.from_card(card.as_dict(), encode) == FimFormat("a", "b", "c")


def test_atomic_write_leaves_the_old_file_or_the_new_never_a_part(tmp_path: Path) -> None:
    from scribe.engine.files.atomic import atomic_path, atomic_write

    target = tmp_path / "sub" / "file.txt"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as part:
        part.write_text("half")
        raise RuntimeError("cut short")
    assert target.read_text() == "old" and sorted(target.parent.iterdir()) == [target]
    atomic_write(target, b"new")
    assert target.read_text() == "new" and sorted(target.parent.iterdir()) == [target]


def test_a_derived_file_is_stale_when_a_source_or_the_version_changes(tmp_path: Path) -> None:
    import os

    from scribe.engine.files.derived import fingerprint, stamp_matches, write_stamp

    source, output, stamp = tmp_path / "w", tmp_path / "out", tmp_path / "out.json"
    source.write_text("one")
    first = fingerprint([source], "v1")
    assert fingerprint([source], "v1") == first != fingerprint([source], "v2")
    assert not stamp_matches(stamp, first, [output])  # never built
    output.write_text("derived")
    write_stamp(stamp, first)
    assert stamp_matches(stamp, first, [output])
    source.write_text("two!")
    os.utime(source, ns=(1, 1))
    assert not stamp_matches(stamp, fingerprint([source], "v1"), [output])  # stale
    output.unlink()
    assert not stamp_matches(stamp, first, [output])  # damaged: an output is gone
    stamp.write_text("{not json")
    assert not stamp_matches(stamp, first)
