"""A plain GPT-2 checkpoint read straight from its files, without importing transformers.

Importing transformers' GPT-2 and its tokenizer costs about 3 s of a 6 s `scribe complete` on a
2-core machine (it pulls in torch._dynamo and torch.distributed). A plain GPT-2 folder with a
tokenizer.json needs only safetensors and tokenizers, which read the same files to the same
numbers, and a tensor is read only when it is used (with cached int8 weights, the float matrices
never are). Anything else, and anything that asks for `LoadedModel.model`, goes through
transformers (../models.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported when a tensor is read: `scribe models` checks folders
    import torch  # with config_problem and tensors_problem, and needs no torch for that

# Config keys whose non-default values change GPT-2's arithmetic; forward.py runs none.
UNUSUAL = {
    "scale_attn_by_inverse_layer_idx": False,
    "reorder_and_upcast_attn": False,
    "add_cross_attention": False,
    "scale_attn_weights": True,
}


@dataclass(frozen=True)
class Shape:
    n_layer: int
    n_head: int
    n_embd: int
    n_positions: int
    vocab_size: int
    eps: float
    activation: str  # config.activation_function: "gelu_new" for GPT-2

    @classmethod
    def from_config(cls, config: Any) -> Shape:
        """From config.json's dict or a transformers GPT2Config."""
        get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
        return cls(
            n_layer=int(get("n_layer")),
            n_head=int(get("n_head")),
            n_embd=int(get("n_embd")),
            n_positions=int(get("n_positions")),
            vocab_size=int(get("vocab_size")),
            eps=float(get("layer_norm_epsilon", 1e-5)),
            activation=str(get("activation_function", "gelu_new")),
        )


def is_plain(config: dict[str, Any]) -> bool:
    """A GPT2LMHeadModel whose options the lean forward reproduces exactly."""
    architectures = config.get("architectures") or ["GPT2LMHeadModel"]
    return (
        config.get("model_type") == "gpt2"
        and architectures == ["GPT2LMHeadModel"]
        and all(config.get(key, default) == default for key, default in UNUSUAL.items())
        and config.get("activation_function", "gelu_new") == "gelu_new"
    )


# config.json's sizes: each must be a positive whole number for Shape and the forward pass.
REQUIRED_SIZES = ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def config_problem(config: dict[str, Any]) -> str | None:
    """What in a GPT-2 config.json would break Shape.from_config or the forward pass, or None."""
    for key in REQUIRED_SIZES:
        if key not in config:
            return f"{key} is missing"
        if not _positive_int(config[key]):
            return f"{key} must be a positive whole number, not {config[key]!r}"
    if config["n_embd"] % config["n_head"]:
        return f"n_embd ({config['n_embd']}) must be a multiple of n_head ({config['n_head']})"
    inner = config.get("n_inner")
    if inner is not None and not _positive_int(inner):
        return f"n_inner must be a positive whole number or null, not {inner!r}"
    eps = config.get("layer_norm_epsilon", 1e-5)
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < math.inf:
        return f"layer_norm_epsilon must be a small positive number, not {eps!r}"
    return None


def expected_shapes(config: dict[str, Any]) -> dict[str, list[int]]:
    """The tensors a GPT2LMHeadModel of this (checked) config holds, by Weights' names, with
    Conv1D's [in, out] layout; the LM head is tied to wte unless the file has its own."""
    c, v, p = config["n_embd"], config["vocab_size"], config["n_positions"]
    inner = config.get("n_inner") or 4 * c
    shapes = {"wte.weight": [v, c], "wpe.weight": [p, c], "ln_f.weight": [c], "ln_f.bias": [c]}
    for layer in range(config["n_layer"]):
        for name, shape in (
            ("ln_1.weight", [c]),
            ("ln_1.bias", [c]),
            ("attn.c_attn.weight", [c, 3 * c]),
            ("attn.c_attn.bias", [3 * c]),
            ("attn.c_proj.weight", [c, c]),
            ("attn.c_proj.bias", [c]),
            ("ln_2.weight", [c]),
            ("ln_2.bias", [c]),
            ("mlp.c_fc.weight", [c, inner]),
            ("mlp.c_fc.bias", [inner]),
            ("mlp.c_proj.weight", [inner, c]),
            ("mlp.c_proj.bias", [c]),
        ):
            shapes[f"h.{layer}.{name}"] = shape
    return shapes


def tensors_problem(config: dict[str, Any], shapes: dict[str, list[int]]) -> str | None:
    """How a file's tensor shapes (names with or without "transformer.") disagree with a checked
    config: a missing tensor, another size, more layers than n_layer; or None."""
    found = {name.removeprefix("transformer."): shape for name, shape in shapes.items()}
    expected = expected_shapes(config)
    if "lm_head.weight" in found:
        expected["lm_head.weight"] = expected["wte.weight"]
    for name, shape in expected.items():
        if name not in found:
            return f"tensor {name} is missing"
        if list(found[name]) != shape:
            return f"tensor {name} is {found[name]}, config.json's sizes need {shape}"
    layers = [int(m.group(1)) for name in found if (m := re.match(r"h\.(\d+)\.", name))]
    n_layer = config["n_layer"]
    if layers and max(layers) >= n_layer:
        return f"the weights have {max(layers) + 1} layers, config.json says n_layer = {n_layer}"
    return None


class Weights(Mapping[str, "torch.Tensor"]):
    """GPT-2's tensors by transformers' names without the "transformer." prefix ("wte.weight",
    "h.0.attn.c_attn.weight", ...; "lm_head.weight" is the tied wte), as float32 torch tensors,
    each read from the safetensors file the first time it is asked for. The headers (names,
    shapes, dtypes) are read without torch, which is imported at the first tensor read: a model
    the numpy backend runs reads `files` itself and never imports it."""

    def __init__(self, files: list[Path]) -> None:
        from safetensors import safe_open

        self.files = list(files)
        # Header readers (numpy's framework imports no torch); torch's, per file, on first read.
        self._headers = [safe_open(str(f), framework="numpy") for f in self.files]
        self._readers: dict[int, Any] = {}
        self._where: dict[str, tuple[int, str]] = {}
        for index, handle in enumerate(self._headers):
            for key in handle.keys():
                self._where[key.removeprefix("transformer.")] = (index, key)
        if "lm_head.weight" not in self._where and "wte.weight" in self._where:
            self._where["lm_head.weight"] = self._where["wte.weight"]
        self._loaded: dict[str, torch.Tensor] = {}

    def __getitem__(self, name: str) -> torch.Tensor:
        tensor = self._loaded.get(name)
        if tensor is None:
            if self._tied(name):
                tensor = self["wte.weight"]  # one tensor, as in transformers
            else:
                index, key = self._where[name]
                tensor = to_float32(self._reader(index).get_tensor(key))
            self._loaded[name] = tensor
        return tensor

    def _reader(self, index: int) -> Any:
        reader = self._readers.get(index)
        if reader is None:
            from safetensors import safe_open

            reader = self._readers[index] = safe_open(str(self.files[index]), framework="pt")
        return reader

    def dtypes(self) -> set[str]:
        """The safetensors dtypes of the stored tensors ("F16", "F32", "BF16", ...)."""
        return {
            self._headers[index].get_slice(key).get_dtype() for index, key in self._where.values()
        }

    def read_names(self) -> set[str]:
        """The tensors read from the files so far (the others were never loaded into memory)."""
        return set(self._loaded)

    def _tied(self, name: str) -> bool:
        return name == "lm_head.weight" and self._where[name] == self._where.get("wte.weight")

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def parameters(self) -> int:
        """Parameter count from the headers (the tied head counted once; OpenAI's original
        files also hold each layer's causal mask as "attn.bias", which is no parameter)."""
        return sum(
            math.prod(self._headers[index].get_slice(key).get_shape())
            for name, (index, key) in self._where.items()
            if not self._tied(name) and not name.endswith((".attn.bias", ".attn.masked_bias"))
        )


def to_float32(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` as float32. fp16 goes through numpy, whose conversion is several times faster
    than torch's on the CPU (the embedded model's 7M fp16 weights: 20 ms, not 100-200 ms, of
    every start); the values are the same, as every fp16 number is exact in float32."""
    import torch

    if tensor.dtype == torch.float16:
        try:
            import numpy

            return torch.from_numpy(tensor.numpy().astype(numpy.float32))
        except (ImportError, RuntimeError):  # a torch without numpy support
            pass
    return tensor.to(torch.float32)


class TextTokenizer:
    """The tokenizer generation needs (encode, decode, end-of-text id) on the `tokenizers`
    library: the object transformers' fast tokenizer wraps, so ids and text are the same."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        eos = _special_token(path, "eos_token")
        eos_id = self._tok.token_to_id(eos) if eos else None
        self.eos_token_id: int | None = eos_id if eos_id is not None else config.get("eos_token_id")

    @property
    def backend_tokenizer(self) -> Any:
        """The `tokenizers` object (transformers' fast tokenizer names it the same)."""
        return self._tok

    @property
    def vocab_size(self) -> int:
        """Every id the tokenizer can produce, added tokens included."""
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(
        self,
        ids: list[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool = False,
    ) -> str:
        if clean_up_tokenization_spaces:
            raise ValueError("clean_up_tokenization_spaces is transformers' option only")
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)


def _special_token(path: Path, name: str) -> str | None:
    for file in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            value = json.loads((path / file).read_text(encoding="utf-8")).get(name)
        except (OSError, ValueError):
            continue
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            return value
    return None


def tokenizer_is_plain(path: Path) -> bool:
    """A tokenizer.json that transformers would not change at load (no prefix-space option)."""
    if not (path / "tokenizer.json").exists():
        return False
    try:
        options = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        options = {}
    return not options.get("add_prefix_space", False)
