"""GGUF export: a GPT-2 that scribe loads (a full model, a LoRA adapter merged into its base, or
the embedded default) as one .gguf file for llama.cpp, with an Ollama Modelfile beside it.

The file is laid out as llama.cpp's convert_hf_to_gguf.py writes the "gpt2" architecture: its
metadata keys, its tensor names (gguf's own GPT-2 name map), Conv1D weights transposed to
llama.cpp's [out, in] layout, norms, biases and position embeddings in F32, the other matrices in
the chosen type (F16 where a row does not fill whole 32-value quantization blocks), and the
byte-level BPE vocabulary with its merges.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import gguf
import numpy as np

from scribe.engine import paths
from scribe.engine.errors import InputError, ModelError, OutputError
from scribe.engine.export.gguf_vocab import Vocab, read_vocab, tokenizer_json
from scribe.engine.export.ollama import MODELFILE, generation_config, modelfile_text, stop_tokens
from scribe.engine.files.atomic import atomic_path
from scribe.engine.runtime import model_files, models

Q = gguf.GGMLQuantizationType
# --quant -> (general.file_type, the type of the 2-D weight matrices).
QUANTS: dict[str, tuple[gguf.LlamaFileType, gguf.GGMLQuantizationType]] = {
    "f16": (gguf.LlamaFileType.MOSTLY_F16, Q.F16),
    "q8_0": (gguf.LlamaFileType.MOSTLY_Q8_0, Q.Q8_0),
    "q4_0": (gguf.LlamaFileType.MOSTLY_Q4_0, Q.Q4_0),
}
ARCH = gguf.MODEL_ARCH.GPT2
POSITION_EMBD = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.POS_EMBD] + ".weight"
TOKEN_EMBD = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.TOKEN_EMBD] + ".weight"
OUTPUT = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.OUTPUT] + ".weight"
# GPT-2's Conv1D layers store [in, out]; llama.cpp, like nn.Linear, wants [out, in].
CONV1D_WEIGHTS = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight")
# Attention-mask buffers in old checkpoints: not weights, and the converter drops them too.
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")
# Activations llama.cpp's gpt2 graph computes (its GELU is the tanh approximation).
GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu")
T = TypeVar("T")


@dataclass(frozen=True)
class ExportResult:
    gguf_path: Path
    modelfile: Path
    name: str
    quant: str
    tensors: int
    size_bytes: int
    # Matrices written F16 instead of --quant: their rows are not whole quantization blocks.
    f16_fallbacks: list[str] = field(default_factory=list)


def export_gguf(
    spec: str | None, quant: str = "f16", out: str | Path | None = None, force: bool = False
) -> ExportResult:
    """Write model `spec` (as --model takes it; None or "default": the default model) to a
    GGUF file at `out` (a .gguf file, or a folder for NAME-QUANT.gguf; default: the current
    folder) and an Ollama Modelfile beside it. Either file that exists already is the user's:
    it is replaced only with `force`."""
    if quant not in QUANTS:
        raise InputError(f"--quant {quant!r}: choose one of {', '.join(QUANTS)}")
    loaded = models.load(spec, precision="fp32")
    name = export_name(spec, loaded)
    target = target_path(out, name, quant)
    modelfile = target.parent / MODELFILE
    if not force:
        _refuse_existing(target, modelfile)
    n_ctx = loaded.n_positions
    model = _merged_model(loaded)
    config = model.config.to_dict()
    _check_gpt2(loaded.path, config)
    vocab = read_vocab(tokenizer_json(loaded), int(config["vocab_size"]), loaded.path)
    written = _write_atomically(
        target, lambda part: write_gguf(part, config, model, vocab, loaded, n_ctx, quant), force
    )
    generation = generation_config(loaded.path)
    text = modelfile_text(target.name, generation, stop_tokens(loaded, generation), n_ctx)
    _write_atomically(modelfile, lambda part: part.write_text(text, encoding="utf-8"), force)
    wanted = QUANTS[quant][1]
    fallbacks = [n for n, (want, got) in written.items() if want == wanted and got != wanted]
    return ExportResult(
        target, modelfile, name, quant, len(written), target.stat().st_size, fallbacks
    )


def _refuse_existing(*files: Path) -> None:
    """Before any work: an existing file is never replaced unasked."""
    for file in files:
        if file.exists() or file.is_symlink():
            raise OutputError(_exists(file))


def _exists(file: Path) -> str:
    return f"{file} already exists; pass --force to replace it, or --out somewhere else"


def export_name(spec: str | None, loaded: models.LoadedModel) -> str:
    """The name the files are called by: the model's folder, or a hub id's last part (its
    folder is a snapshot hash), made safe for a file name."""
    name = loaded.name
    if spec and loaded.path.parent.name == "snapshots":
        name = spec.rsplit("/", 1)[-1]
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "model"


def target_path(out: str | Path | None, name: str, quant: str) -> Path:
    """`out` itself when it names a .gguf file, else NAME-QUANT.gguf in the folder `out` (made
    if needed); in the current folder when None."""
    filename = f"{name}-{quant}.gguf"
    if out is None:
        return Path(filename)
    folder = str(out).endswith(("/", os.sep))  # a slash Path would drop
    out = paths.user_path(str(out), "--out")
    if folder or out.is_dir() or out.suffix.lower() != ".gguf":
        return out / filename
    return out


def _merged_model(loaded: models.LoadedModel) -> Any:
    """transformers' model; a LoRA adapter is merged into its base first, so the file holds
    plain weights (llama.cpp's gpt2 graph has no adapter slots)."""
    model = loaded.model
    if not (loaded.path / model_files.ADAPTER_CONFIG).exists():
        return model
    merge = getattr(model, "merge_and_unload", None)
    if merge is None:
        kind = model_files.read_adapter_config(loaded.path).get("peft_type", "this")
        raise ModelError(
            f"{loaded.path}: a {kind} adapter cannot be merged into its base model, so it has "
            "no GGUF form; export its base, or finetune with --method lora"
        )
    return merge()


def _check_gpt2(path: Path, config: Mapping[str, Any]) -> None:
    """What llama.cpp's gpt2 graph would compute differently fails here, not in llama.cpp."""
    if config.get("model_type") != "gpt2":
        raise ModelError(
            f"{path}: model type {config.get('model_type')!r} is not GPT-2; scribe exports "
            "GPT-2 models to GGUF"
        )
    activation = config.get("activation_function", "gelu_new")
    problems = {
        f"activation {activation!r}": activation not in GELU,
        "scale_attn_by_inverse_layer_idx": bool(config.get("scale_attn_by_inverse_layer_idx")),
        "scale_attn_weights false": not config.get("scale_attn_weights", True),
    }
    unsupported = [what for what, bad in problems.items() if bad]
    if unsupported:
        raise ModelError(
            f"{path / 'config.json'}: {', '.join(unsupported)} is not part of llama.cpp's GPT-2, "
            "so a GGUF file would not reproduce this model"
        )


def gguf_tensors(state: Mapping[str, Any], n_layer: int) -> Iterator[tuple[str, np.ndarray]]:
    """(llama.cpp name, float32 array in llama.cpp's layout) for each of the model's tensors;
    a tied LM head is written out as a copy of the token embeddings, as the converter does."""
    names = gguf.get_tensor_name_map(ARCH, n_layer)
    seen = set()
    for hf_name, tensor in state.items():
        if hf_name.endswith(MASK_BUFFERS):
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ModelError(f"tensor {hf_name} has no place in llama.cpp's GPT-2 layout")
        array = tensor.detach().float().cpu().numpy()
        if hf_name.endswith(CONV1D_WEIGHTS):
            array = array.T
        seen.add(name)
        yield name, np.ascontiguousarray(array)
    if OUTPUT not in seen:
        token_embd = next(t for n, t in state.items() if names.get_name(n) == TOKEN_EMBD)
        yield OUTPUT, np.ascontiguousarray(token_embd.detach().float().cpu().numpy())


def tensor_type(name: str, array: np.ndarray, quant: str) -> gguf.GGMLQuantizationType:
    """F32 for what llama.cpp only reads as F32 (1-D tensors, norms, biases, position
    embeddings, as the converter decides); --quant's type for the weight matrices."""
    if array.ndim <= 1 or name.endswith("_norm.weight") or not name.endswith(".weight"):
        return Q.F32
    if name == POSITION_EMBD:
        return Q.F32
    return QUANTS[quant][1]


def encode(array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> tuple[np.ndarray, Any]:
    """The tensor's bytes in `qtype`, or in F16 when its rows are not whole 32-value blocks
    (the converter's fallback)."""
    try:
        return gguf.quants.quantize(array, qtype), qtype
    except gguf.QuantError:
        return gguf.quants.quantize(array, Q.F16), Q.F16


def write_gguf(
    path: Path,
    config: Mapping[str, Any],
    model: Any,
    vocab: Vocab,
    loaded: models.LoadedModel,
    n_ctx: int,
    quant: str,
) -> dict[str, tuple[Any, Any]]:
    """Write the GGUF file; returns each tensor's (wanted type, written type)."""
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[ARCH])
    _add_general(writer, loaded)
    _add_hparams(writer, config, n_ctx, quant)
    _add_tokenizer(writer, vocab, loaded, config)
    written = {}
    for name, array in gguf_tensors(model.state_dict(), int(config["n_layer"])):
        wanted = tensor_type(name, array, quant)
        data, qtype = encode(array, wanted)
        written[name] = (wanted, qtype)
        writer.add_tensor(name, data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written


def _add_general(writer: gguf.GGUFWriter, loaded: models.LoadedModel) -> None:
    """general.* from the scribe card (scribe.json), else the model's folder name."""
    card = loaded.card
    writer.add_type(gguf.GGUFType.MODEL)
    name = card.get("name")
    writer.add_name(name if isinstance(name, str) and name else loaded.name)
    description = card.get("description")
    if isinstance(description, str) and description:
        writer.add_description(description)
    licence = card.get("licence", card.get("license"))
    if isinstance(licence, str) and licence:
        writer.add_license(licence)


def _add_hparams(
    writer: gguf.GGUFWriter, config: Mapping[str, Any], n_positions: int, quant: str
) -> None:
    n_embd = int(config["n_embd"])
    writer.add_context_length(n_positions)
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(int(config.get("n_inner") or 4 * n_embd))
    writer.add_block_count(int(config["n_layer"]))
    writer.add_head_count(int(config["n_head"]))
    writer.add_layer_norm_eps(float(config.get("layer_norm_epsilon", 1e-5)))
    writer.add_file_type(QUANTS[quant][0])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _add_tokenizer(
    writer: gguf.GGUFWriter, vocab: Vocab, loaded: models.LoadedModel, config: Mapping[str, Any]
) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")  # byte-level BPE split by GPT-2's pattern
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    tokenizer = loaded.tokenizer
    bos = _first_id(tokenizer.bos_token_id, config.get("bos_token_id"))
    eos = _first_id(tokenizer.eos_token_id, config.get("eos_token_id"))
    if bos is not None:
        writer.add_bos_token_id(bos)
    if eos is not None:
        writer.add_eos_token_id(eos)
    if tokenizer.pad_token_id is not None:
        writer.add_pad_token_id(int(tokenizer.pad_token_id))
    # scribe encodes prompts without special tokens; llama.cpp must not add a BOS either.
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)


def _first_id(*candidates: Any) -> int | None:
    for value in candidates:
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _write_atomically(target: Path, write: Callable[[Path], T], replace: bool) -> T:
    """Call write(partial path), then move it to `target` (over an existing file only when
    `replace`): a failed export leaves no half-written file that llama.cpp or Ollama would
    choke on, and a file that appeared meanwhile is kept."""
    try:
        with atomic_path(target, replace) as part:
            return write(part)
    except FileExistsError:
        raise OutputError(_exists(target)) from None
    except OSError as err:
        raise OutputError(
            f"{target}: cannot write ({err.strerror or err}); free some space or pass --out "
            "somewhere writable"
        ) from None
