"""`scribe export --format gguf`: files read back with gguf's own reader, checked against the
model's weights and tokenizer, and a numpy GPT-2 forward over the GGUF tensors in llama.cpp's
layout that must give transformers' logits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from scribe.engine.errors import ModelError, OutputError
from scribe.engine.export.gguf import export_gguf
from scribe.engine.runtime.model_files import DEFAULT_MODEL_DIR
from scribe.tui.cli import main
from tests import factory

Q = gguf.GGMLQuantizationType
BLOCK_PARTS = {  # GPT-2 block tensor -> (llama.cpp name, Conv1D weight stored [in, out])
    "ln_1": ("attn_norm", False),
    "attn.c_attn": ("attn_qkv", True),
    "attn.c_proj": ("attn_output", True),
    "ln_2": ("ffn_norm", False),
    "mlp.c_fc": ("ffn_up", True),
    "mlp.c_proj": ("ffn_down", True),
}


def expected_tensors(model_dir: Path) -> dict[str, np.ndarray]:
    """llama.cpp name -> float32 weights in llama.cpp's [out, in] layout, from the safetensors."""
    w = {k: v.float().numpy() for k, v in load_file(model_dir / "model.safetensors").items()}
    t = {
        "token_embd.weight": w["transformer.wte.weight"],
        "position_embd.weight": w["transformer.wpe.weight"],
        "output_norm.weight": w["transformer.ln_f.weight"],
        "output_norm.bias": w["transformer.ln_f.bias"],
        "output.weight": w.get("lm_head.weight", w["transformer.wte.weight"]),  # tied head
    }
    layers = json.loads((model_dir / "config.json").read_text())["n_layer"]
    for i in range(layers):
        for hf, (name, conv1d) in BLOCK_PARTS.items():
            weight = w[f"transformer.h.{i}.{hf}.weight"]
            t[f"blk.{i}.{name}.weight"] = weight.T if conv1d else weight
            t[f"blk.{i}.{name}.bias"] = w[f"transformer.h.{i}.{hf}.bias"]
    return t


def fields(reader: gguf.GGUFReader) -> dict[str, Any]:
    return {name: field.contents() for name, field in reader.fields.items()}


def dequantized(reader: gguf.GGUFReader) -> dict[str, np.ndarray]:
    """Each tensor as float32, in numpy's [out, in] order."""
    return {t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in reader.tensors}


def export(model_dir: Path | str | None, out: Path, quant: str) -> tuple[Any, gguf.GGUFReader]:
    result = export_gguf(None if model_dir is None else str(model_dir), quant, out)
    return result, gguf.GGUFReader(result.gguf_path)


# -- architecture, tensors, weights ------------------------------------------------------------
@pytest.mark.parametrize(
    ("quant", "file_type", "matrix_type"),
    [("f16", 1, Q.F16), ("q8_0", 7, Q.Q8_0), ("q4_0", 2, Q.Q4_0)],
)
def test_metadata_and_every_tensor(
    tiny_model_dir: Path, tmp_path: Path, quant: str, file_type: int, matrix_type: Any
) -> None:
    result, reader = export(tiny_model_dir, tmp_path, quant)
    assert result.gguf_path == tmp_path / f"tiny-model0-{quant}.gguf"
    meta = fields(reader)
    assert meta["general.architecture"] == "gpt2"
    assert meta["general.type"] == "model"
    assert meta["general.name"] == "tiny-model0"
    assert meta["general.file_type"] == file_type
    assert meta["general.quantization_version"] == gguf.GGML_QUANT_VERSION
    assert meta["gpt2.context_length"] == 128
    assert meta["gpt2.embedding_length"] == 32
    assert meta["gpt2.feed_forward_length"] == 128
    assert meta["gpt2.block_count"] == 2
    assert meta["gpt2.attention.head_count"] == 2
    assert meta["gpt2.attention.layer_norm_epsilon"] == pytest.approx(1e-5)

    expected = expected_tensors(tiny_model_dir)
    tensors = {t.name: t for t in reader.tensors}
    assert sorted(tensors) == sorted(expected)
    assert result.tensors == len(expected) and result.f16_fallbacks == []
    for name, weights in expected.items():
        # GGUF lists dimensions innermost first: [in, out] for a matrix stored [out, in].
        assert [int(d) for d in tensors[name].shape] == list(reversed(weights.shape)), name
        one_d = weights.ndim == 1 or name == "position_embd.weight"
        assert tensors[name].tensor_type == (Q.F32 if one_d else matrix_type), name


def test_f16_tensors_equal_the_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    _, reader = export(tiny_model_dir, tmp_path, "f16")
    got = dequantized(reader)
    for name, weights in expected_tensors(tiny_model_dir).items():
        assert got[name].shape == weights.shape, name
        if weights.ndim == 1 or name == "position_embd.weight":
            np.testing.assert_array_equal(got[name], weights, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], weights.astype(np.float16), err_msg=name)
    np.testing.assert_array_equal(got["output.weight"], got["token_embd.weight"])


@pytest.mark.parametrize(("quant", "tolerance"), [("q8_0", 0.01), ("q4_0", 0.15)])
def test_quantized_tensors_dequantize_close(
    tiny_model_dir: Path, tmp_path: Path, quant: str, tolerance: float
) -> None:
    """Per 32-value block, the error is under `tolerance` of the block's largest weight."""
    _, reader = export(tiny_model_dir, tmp_path, quant)
    got = dequantized(reader)
    for name, weights in expected_tensors(tiny_model_dir).items():
        if weights.ndim == 1:
            continue
        blocks = weights.reshape(-1, 32)
        error = np.abs(got[name].reshape(-1, 32) - blocks).max(axis=1)
        assert (error <= tolerance * np.abs(blocks).max(axis=1) + 1e-7).all(), name


def gguf_forward(t: dict[str, np.ndarray], meta: dict[str, Any], ids: list[int]) -> np.ndarray:
    """GPT-2 as llama.cpp's graph computes it from the GGUF tensors (y = W @ x, W [out, in])."""
    n_head, eps = meta["gpt2.attention.head_count"], meta["gpt2.attention.layer_norm_epsilon"]

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
        return x * t[name + ".weight"] + t[name + ".bias"]

    def linear(x: np.ndarray, name: str) -> np.ndarray:
        return x @ t[name + ".weight"].T + t[name + ".bias"]

    def gelu(x: np.ndarray) -> np.ndarray:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))

    n = len(ids)
    x = t["token_embd.weight"][ids] + t["position_embd.weight"][:n]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(meta["gpt2.block_count"]):
        q, k, v = np.split(linear(norm(x, f"blk.{i}.attn_norm"), f"blk.{i}.attn_qkv"), 3, -1)
        heads = [a.reshape(n, n_head, -1).transpose(1, 0, 2) for a in (q, k, v)]
        scores = heads[0] @ heads[1].transpose(0, 2, 1) / np.sqrt(heads[0].shape[-1]) + mask
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        attn = (probs @ heads[2]).transpose(1, 0, 2).reshape(n, -1)
        x = x + linear(attn, f"blk.{i}.attn_output")
        x = x + linear(
            gelu(linear(norm(x, f"blk.{i}.ffn_norm"), f"blk.{i}.ffn_up")), f"blk.{i}.ffn_down"
        )
    return norm(x, "output_norm") @ t["output.weight"].T


def test_gguf_tensors_compute_the_models_logits(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The layout is right, not only the values: llama.cpp's arithmetic on the GGUF tensors
    reproduces transformers' logits (to f16 rounding)."""
    _, reader = export(tiny_model_dir, tmp_path, "f16")
    ids = AutoTokenizer.from_pretrained(tiny_model_dir).encode("The quick brown fox jumps")
    got = gguf_forward(dequantized(reader), fields(reader), ids)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        want = model(torch.tensor([ids])).logits[0].numpy()
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_rows_that_are_not_whole_blocks_fall_back_to_f16(tmp_path: Path) -> None:
    """n_embd 48: matrices that read 48 values per row cannot be Q8_0 blocks of 32."""
    model_dir = factory.save_model(
        tmp_path / "wide", factory.tiny_tokenizer(), n_layer=1, n_head=2, n_embd=48, n_positions=64
    )
    result, reader = export(model_dir, tmp_path / "out", "q8_0")
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_qkv.weight"] == Q.F16  # [144, 48]
    assert types["blk.0.ffn_down.weight"] == Q.Q8_0  # [48, 192]
    assert "blk.0.ffn_down.weight" not in result.f16_fallbacks
    assert {"token_embd.weight", "blk.0.attn_qkv.weight"} <= set(result.f16_fallbacks)


# -- vocabulary --------------------------------------------------------------------------------
def check_vocabulary(model_dir: Path, reader: gguf.GGUFReader) -> dict[str, Any]:
    meta = fields(reader)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    data = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert meta["tokenizer.ggml.model"] == "gpt2"
    assert meta["tokenizer.ggml.pre"] == "gpt-2"
    assert meta["tokenizer.ggml.tokens"] == tokenizer.convert_ids_to_tokens(
        list(range(len(tokenizer)))
    )
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    assert meta["tokenizer.ggml.merges"] == merges
    assert meta["tokenizer.ggml.bos_token_id"] == tokenizer.bos_token_id
    assert meta["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    assert meta["tokenizer.ggml.add_bos_token"] is False
    return meta


def test_vocabulary_of_a_trained_bpe(tiny_model_dir: Path, tmp_path: Path) -> None:
    _, reader = export(tiny_model_dir, tmp_path, "q8_0")
    meta = check_vocabulary(tiny_model_dir, reader)
    types = meta["tokenizer.ggml.token_type"]
    eos = meta["tokenizer.ggml.eos_token_id"]
    assert types[eos] == gguf.TokenType.CONTROL
    assert [i for i, kind in enumerate(types) if kind != gguf.TokenType.NORMAL] == [eos]


@pytest.mark.slow
def test_vocabulary_of_real_gpt2(gpt2_vocab_model_dir: Path, tmp_path: Path) -> None:
    result, reader = export(gpt2_vocab_model_dir, tmp_path, "f16")
    meta = check_vocabulary(gpt2_vocab_model_dir, reader)
    assert len(meta["tokenizer.ggml.tokens"]) == 50257
    assert len(meta["tokenizer.ggml.merges"]) == 50000
    assert meta["tokenizer.ggml.tokens"][50256] == "<|endoftext|>"
    assert meta["tokenizer.ggml.token_type"][50256] == gguf.TokenType.CONTROL
    assert meta["gpt2.context_length"] == 1024
    tensors = {t.name: [int(d) for d in t.shape] for t in reader.tensors}
    assert tensors["token_embd.weight"] == tensors["output.weight"] == [32, 50257]
    assert result.gguf_path.name == "gpt2-vocab-model0-f16.gguf"


def test_fim_tokens_are_control_tokens(tiny_model_dir: Path, tmp_path: Path) -> None:
    from scribe.engine.finetune import fim

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert fim.add_tokens(tokenizer, None)
    model_dir = factory.save_model(
        tmp_path / "fim", tokenizer, n_layer=1, n_head=2, n_embd=32, n_positions=64
    )
    _, reader = export(model_dir, tmp_path / "out", "f16")
    meta = check_vocabulary(model_dir, reader)
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    for token in fim.TOKENS:
        assert types[tokens.index(token)] == gguf.TokenType.CONTROL, token


# -- the Modelfile -----------------------------------------------------------------------------
def test_modelfile_from_generation_config(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = Path(shutil.copytree(tiny_model_dir, tmp_path / "story"))
    generation = json.loads((model_dir / "generation_config.json").read_text())
    generation.update(temperature=0.6, top_k=20, top_p=0.9, stop_strings=["\n\n", 'a "b"'])
    (model_dir / "generation_config.json").write_text(json.dumps(generation))
    result = export_gguf(str(model_dir), "q4_0", tmp_path / "out" / "story.gguf")
    assert result.modelfile == tmp_path / "out" / "Modelfile"
    assert result.modelfile.read_text(encoding="utf-8") == (
        "FROM ./story.gguf\n"
        "\n"
        'TEMPLATE """{{ .Prompt }}"""\n'
        "\n"
        "PARAMETER temperature 0.6\n"
        "PARAMETER top_k 20\n"
        "PARAMETER top_p 0.9\n"
        "PARAMETER num_ctx 128\n"
        'PARAMETER stop "<|endoftext|>"\n'
        'PARAMETER stop "\n\n"\n'  # Ollama's parser takes quoted text as is: no escapes
        'PARAMETER stop """a "b""""\n'
    )


def test_modelfile_falls_back_to_scribes_defaults(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The factory's generation_config.json has no sampling settings: scribe's own apply."""
    result = export_gguf(str(tiny_model_dir), "f16", tmp_path)
    text = result.modelfile.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "FROM ./tiny-model0-f16.gguf"
    assert "PARAMETER temperature 0.7\nPARAMETER top_k 40\nPARAMETER top_p 0.95\n" in text


@pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "config.json").exists(), reason="embedded model not built"
)
def test_the_embedded_default_model(tmp_path: Path) -> None:
    result, reader = export("default", tmp_path, "f16")
    meta = fields(reader)
    card = json.loads((DEFAULT_MODEL_DIR / "scribe.json").read_text(encoding="utf-8"))
    assert result.gguf_path == tmp_path / "default-f16.gguf"
    assert meta["general.name"] == card["name"]
    assert meta["general.description"] == card["description"]
    assert meta["gpt2.block_count"] == card["shape"]["n_layer"]
    assert len(meta["tokenizer.ggml.tokens"]) == card["shape"]["vocab_size"]
    text = result.modelfile.read_text(encoding="utf-8")
    assert "PARAMETER temperature 0.8\nPARAMETER top_k 40\nPARAMETER top_p 0.95\n" in text
    got = dequantized(reader)
    for name, weights in expected_tensors(DEFAULT_MODEL_DIR).items():
        np.testing.assert_array_equal(got[name], weights.astype(got[name].dtype), err_msg=name)


# -- LoRA --------------------------------------------------------------------------------------
def test_a_lora_adapter_is_merged(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["c_attn", "c_fc"],
        fan_in_fan_out=True,  # GPT-2's Conv1D
        init_lora_weights=False,  # random B: the merge must change the weights
    )
    adapter = get_peft_model(base, config)
    adapter.peft_config["default"].base_model_name_or_path = str(tiny_model_dir)
    adapter.save_pretrained(tmp_path / "lora", safe_serialization=True)
    saved = {p.name for p in (tmp_path / "lora").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= saved
    assert not any(name.endswith(".bin") for name in saved)
    merged = {k: v.numpy() for k, v in adapter.merge_and_unload().state_dict().items()}

    result, reader = export(tmp_path / "lora", tmp_path / "out", "f16")
    assert result.gguf_path.name == "lora-f16.gguf"
    got = dequantized(reader)
    original = expected_tensors(tiny_model_dir)
    for i in range(2):
        qkv = merged[f"transformer.h.{i}.attn.c_attn.weight"].T
        np.testing.assert_array_equal(got[f"blk.{i}.attn_qkv.weight"], qkv.astype(np.float16))
        assert not np.allclose(qkv, original[f"blk.{i}.attn_qkv.weight"])
        up = merged[f"transformer.h.{i}.mlp.c_fc.weight"].T
        np.testing.assert_array_equal(got[f"blk.{i}.ffn_up.weight"], up.astype(np.float16))
        name = f"blk.{i}.ffn_down.weight"  # not adapted: the base's weights
        np.testing.assert_array_equal(got[name], original[name].astype(np.float16))
    assert not any(t.name.endswith(("lora_a", "lora_b")) for t in reader.tensors)
    # The adapter folder has no generation_config.json: the base's is used.
    assert 'PARAMETER stop "<|endoftext|>"' in result.modelfile.read_text(encoding="utf-8")


def test_a_prefix_adapter_cannot_be_merged(tiny_model_dir: Path, tmp_path: Path) -> None:
    from scribe.engine.runtime.prefix_adapter import PrefixModel

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    PrefixModel.create(base, 4, [1, 2, 3]).save_adapter(tmp_path / "prefix", tiny_model_dir)
    with pytest.raises(ModelError, match="PREFIX_TUNING adapter cannot be merged"):
        export_gguf(str(tmp_path / "prefix"), "f16", tmp_path / "out")


# -- errors and the CLI ------------------------------------------------------------------------
def test_a_missing_model_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no" / "such model"
    assert main(["export", str(missing), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"scribe: error: model '{missing}' not found")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ModelError):
        export_gguf(str(missing))


def test_an_unwritable_out_leaves_no_partial_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write"):
        export_gguf(str(tiny_model_dir), "f16", blocker / "model.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_the_cli_writes_both_files(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exports"
    code = main(["export", str(tiny_model_dir), "--format", "gguf", "--quant", "q8_0",
                 "--out", f"{out}/"])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "tiny-model0-q8_0.gguf"]
    stdout = capsys.readouterr().out
    assert f"wrote {out / 'tiny-model0-q8_0.gguf'} (q8_0, 29 tensors" in stdout
    assert f"ollama create tiny-model0 -f {out / 'Modelfile'}" in stdout
    reader = gguf.GGUFReader(out / "tiny-model0-q8_0.gguf")
    assert fields(reader)["general.file_type"] == gguf.LlamaFileType.MOSTLY_Q8_0


def test_the_cli_writes_into_the_current_folder(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(tiny_model_dir)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Modelfile", "tiny-model0-f16.gguf"]


def test_what_llama_cpp_would_compute_differently_is_refused(tmp_path: Path) -> None:
    model_dir = factory.save_model(
        tmp_path / "scaled", factory.tiny_tokenizer(), n_layer=1, n_head=2, n_embd=32,
        n_positions=64, scale_attn_by_inverse_layer_idx=True,
    )  # fmt: skip
    with pytest.raises(ModelError, match="scale_attn_by_inverse_layer_idx"):
        export_gguf(str(model_dir), "f16", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_cli_offers_the_engines_quant_types() -> None:
    from scribe.engine.export.gguf import QUANTS
    from scribe.tui.commands import export_cmd

    assert export_cmd.QUANTS == tuple(QUANTS)
