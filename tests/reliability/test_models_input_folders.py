"""Model folders broken in the ways a torn download, a hand edit or a mixed-up copy leaves them:
each is one line naming the file and the fix when loaded, and a row marked broken (with that
line) in `scribe models`, which keeps listing the rest. Adapters never unpickle."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from scribe.engine import paths
from tests.tui.cli_run import Cli, one_error

Breakage = Callable[[Path], None]


def safetensors_bytes(header: object, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def write_weights(header: object, data: bytes = b"") -> Breakage:
    return lambda folder: (folder / "model.safetensors").write_bytes(
        safetensors_bytes(header, data)
    )


def edit_config(**changes: object) -> Breakage:
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        for key, value in changes.items():
            if value is None:
                del config[key]
            else:
                config[key] = value
        (folder / "config.json").write_text(json.dumps(config))

    return edit


def drop_tensor(name: str) -> Breakage:
    def drop(folder: Path) -> None:
        tensors = load_file(folder / "model.safetensors")
        del tensors[name]
        save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})

    return drop


def header_past_the_file(folder: Path) -> None:
    data = safetensors_bytes({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})
    (folder / "model.safetensors").write_bytes(data[:20])  # cut inside the JSON


ENTRY = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
# (id, breakage, the file the error names, words in it)
BROKEN: list[tuple[str, Breakage, str, list[str]]] = [
    ("header-list", write_weights([1, 2, 3]), "model.safetensors", ["JSON list"]),
    ("header-string", write_weights("x"), "model.safetensors", ["JSON str"]),
    ("header-garbage", lambda f: (f / "model.safetensors").write_bytes(
        struct.pack("<Q", 5) + b"{oops"), "model.safetensors", ["not valid JSON"]),
    ("header-truncated", header_past_the_file, "model.safetensors", ["does not fit"]),
    ("offsets-past-end", write_weights({"a": ENTRY}, b"\0" * 8), "model.safetensors",
     ["truncated"]),
    ("entry-not-object", write_weights({"a": [1]}), "model.safetensors", ["tensor a"]),
    ("no-tensors", write_weights({"__metadata__": {"format": "pt"}}), "model.safetensors",
     ["no tensors"]),
    ("missing-tensor", drop_tensor("transformer.h.1.mlp.c_fc.bias"), "",
     ["h.1.mlp.c_fc.bias is missing"]),
    ("no-n_positions", edit_config(n_positions=None), "config.json", ["n_positions is missing"]),
    ("n_head-text", edit_config(n_head="2"), "config.json", ["n_head must be a positive"]),
    ("n_embd-zero", edit_config(n_embd=0), "config.json", ["n_embd must be a positive"]),
    ("eps-nan-text", edit_config(layer_norm_epsilon="tiny"), "config.json",
     ["layer_norm_epsilon"]),
    ("other-width", edit_config(n_embd=64), "", ["do not match config.json", "wte.weight"]),
    ("more-layers", edit_config(n_layer=3), "", ["h.2.ln_1.weight is missing"]),
    ("fewer-layers", edit_config(n_layer=1), "", ["2 layers", "n_layer = 1"]),
    ("other-context", edit_config(n_positions=256), "", ["wpe.weight"]),
    ("config-list", lambda f: (f / "config.json").write_text("[1]"), "config.json",
     ["not a JSON object"]),
]  # fmt: skip


@pytest.fixture
def broken(tiny_model_dir: Path, request: pytest.FixtureRequest) -> tuple[Path, str, list[str]]:
    """A copy of the tiny model under models/, broken one way."""
    name, breakage, file, words = request.param
    folder = Path(shutil.copytree(tiny_model_dir, paths.models_dir() / name))
    breakage(folder)
    return folder, str(folder / file) if file else str(folder), words


@pytest.mark.parametrize("broken", BROKEN, ids=[b[0] for b in BROKEN], indirect=True)
def test_a_broken_folder_is_one_line_naming_the_file(
    cli: Cli, broken: tuple[Path, str, list[str]]
) -> None:
    folder, file, words = broken
    code, out, err = cli("complete", "--model", str(folder))
    assert code == 1 and out == ""
    one_error(err, file, *words)


@pytest.mark.parametrize("broken", BROKEN, ids=[b[0] for b in BROKEN], indirect=True)
def test_scribe_models_lists_a_broken_folder_with_its_reason(
    cli: Cli,
    tiny_model_dir: Path,
    broken: tuple[Path, str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, file, words = broken
    shutil.copytree(tiny_model_dir, paths.models_dir() / "zz-good")
    monkeypatch.setenv("COLUMNS", "300")
    code, out, err = cli("models")
    assert code == 0 and err == ""
    assert f"{folder.name} (broken)" in out
    reason = next(line for line in out.splitlines() if line.startswith(f"{folder.name} is broken"))
    assert file in reason and all(word in reason for word in words)
    assert "zz-good (broken)" not in out and "zz-good: " in out


def make_lora(base: Path, folder: Path) -> Path:
    """A real peft LoRA adapter on `base`, saved as safetensors."""
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base)
    config = peft.LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True)
    adapter = peft.get_peft_model(model, config)
    adapter.peft_config["default"].base_model_name_or_path = str(base)
    adapter.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


class Touch:
    """A pickle that creates `marker` when unpickled: proof that nothing unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_a_lora_adapter_loads_and_is_listed_with_its_base(
    cli: Cli, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = Path(shutil.copytree(tiny_model_dir, paths.models_dir() / "base"))
    lora = make_lora(base, paths.models_dir() / "my-lora")
    assert not (lora / "config.json").exists()
    code, _, err = cli("complete", "--model", "my-lora", "--max-tokens", "2")
    assert code == 0 and err == ""
    monkeypatch.setenv("COLUMNS", "300")
    code, out, err = cli("models")
    assert code == 0 and err == ""
    row = next(line for line in out.splitlines() if "my-lora" in line and "│" in line)
    assert "(adapter)" in row and str(base) in row and "broken" not in row
    assert "128" in row  # the context, from the base model's config
    # A scribe.json card's base_model (the name it was trained from) is shown instead.
    (lora / "scribe.json").write_text(json.dumps({"base_model": "base"}), encoding="utf-8")
    out = cli("models")[1]
    row = next(line for line in out.splitlines() if "my-lora" in line and "│" in line)
    assert "│ base " in row and str(base) not in row


def test_an_adapter_saved_as_pickle_is_refused_unopened(
    cli: Cli, tiny_model_dir: Path, tmp_path: Path
) -> None:
    lora = make_lora(tiny_model_dir, tmp_path / "lora")
    (lora / "adapter_model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (lora / "adapter_model.bin").write_bytes(pickle.dumps(Touch(marker)))
    code, out, err = cli("complete", "--model", str(lora))
    assert code == 1 and out == ""
    one_error(err, str(lora), "adapter_model.bin is pickle", "safetensors")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("{not json", ["adapter_config.json", "unreadable adapter config"]),
        ('{"peft_type": "LORA"}', ["adapter_config.json", "base_model_name_or_path"]),
        (
            '{"peft_type": "LORA", "base_model_name_or_path": "./no/such/base"}',
            ["adapter_config.json", "base model './no/such/base' not found"],
        ),
    ],
)
def test_an_adapter_config_that_names_no_usable_base_is_one_line(
    cli: Cli, tiny_model_dir: Path, tmp_path: Path, config: str, words: list[str]
) -> None:
    lora = make_lora(tiny_model_dir, tmp_path / "lora")
    (lora / "adapter_config.json").write_text(config, encoding="utf-8")
    code, _, err = cli("complete", "--model", str(lora))
    assert code == 1
    one_error(err, *words)


def test_models_survives_a_card_that_is_not_json(
    cli: Cli, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = Path(shutil.copytree(tiny_model_dir, paths.models_dir() / "carded"))
    (folder / "scribe.json").write_text("{oops", encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "300")
    code, out, err = cli("models")
    assert code == 0 and err == "" and "carded (broken)" in out
    assert "scribe.json: not valid JSON" in out


def test_hand_edited_card_metrics_do_not_break_the_listing(
    cli: Cli, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = Path(shutil.copytree(tiny_model_dir, paths.models_dir() / "carded"))
    card = {"metrics": {"test_perplexity_before": "high", "test_perplexity_after": None}}
    (folder / "scribe.json").write_text(json.dumps(card), encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "300")
    code, out, err = cli("models")
    assert code == 0 and err == "" and "carded" in out and "broken" not in out
