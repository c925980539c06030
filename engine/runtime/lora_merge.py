"""A LoRA adapter merged into its GPT-2 base without peft or transformers, so an adapter runs on
the fast GPT-2 path (and its int8/int4 weights) like any full model.

peft stores, per adapted module M, `...M.lora_A.weight` [r, in] and `...M.lora_B.weight`
[out, r] (and `...M.lora_B.bias` [out] with `lora_bias`). For GPT-2's Conv1D (weights stored
[in, out]; peft forces `fan_in_fan_out=True` on Conv1D whatever the config says) peft's
merge_and_unload computes W + scale * (B @ A)^T and, with `lora_bias`, b + scale * B.bias, where
scale = alpha / r (alpha / sqrt(r) with `use_rslora`), and r and alpha are `rank_pattern`'s and
`alpha_pattern`'s entries for M when a pattern names it (peft's get_pattern_key), else `r` and
`lora_alpha`. This module computes exactly that. A config whose `r` disagrees with the tensors
is refused (peft cannot load it either); an adapter using anything else peft honours (DoRA,
trained base biases, extra modules, other layers than the blocks' Conv1Ds, ...) is left to peft
itself (models.py), so its output is always peft's.

The merged tensors are written once, atomically, to the cache dir, keyed by the adapter's and
the base's files, and read lazily after that; a new merge of an adapter removes its older ones.
"""

from __future__ import annotations

import atexit
import json
import math
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.files.atomic import atomic_path
from scribe.engine.files.derived import fingerprint, short_key

MERGED_FILE = "merged.safetensors"
FORMAT_VERSION = "lora-merge-2"
PREFIX = "base_model.model."  # peft's prefix of the base model's module names
# The modules merged here: the blocks' Conv1D layers ("transformer.h.0.attn.c_attn").
CONV1D = re.compile(r"(transformer\.)?h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)")
# Config fields that change nothing in a merge of the tensors present (the targets decide which
# tensors exist; dropout and init only act in training), and those handled below.
NEUTRAL = {
    "peft_type", "task_type", "auto_mapping", "peft_version", "base_model_name_or_path",
    "revision", "inference_mode", "lora_dropout", "target_modules", "exclude_modules",
    "layers_to_transform", "layers_pattern", "runtime_config", "megatron_core",
    "qalora_group_size", "eva_config", "corda_config", "lora_ga_config", "loftq_config",
    "ensure_weight_tying", "fan_in_fan_out", "init_lora_weights",
    "r", "lora_alpha", "use_rslora", "rank_pattern", "alpha_pattern", "lora_bias", "bias",
}  # fmt: skip
# init_lora_weights values after which the saved tensors are the whole adapter (PiSSA, OLoRA,
# LoftQ and the like also change the base, which peft does when it loads them).
PLAIN_INIT = (True, False, None, "gaussian")


class NotMergeable(Exception):
    """The adapter uses something this merge does not compute: peft loads it instead."""


def mergeable(adapter_config: dict[str, Any]) -> bool:
    """A plain LoRA, by its config: every field is one this merge follows (NEUTRAL) or left at
    peft's default. The tensors are checked when merging (NotMergeable, ValueError)."""
    config = adapter_config
    r = config.get("r")
    if config.get("peft_type") != "LORA" or isinstance(r, bool) or not isinstance(r, int):
        return False
    if r <= 0 or config.get("bias", "none") != "none":
        return False
    if config.get("init_lora_weights", True) not in PLAIN_INIT:
        return False
    return not any(value for key, value in config.items() if key not in NEUTRAL)


def _pattern_key(patterns: dict[str, Any], module: str) -> str:
    """peft's get_pattern_key: the first pattern that matches the end of the module's name at
    a dot, else the name itself."""
    for key in patterns:
        if re.match(rf"(.*\.)?({key})$", module):
            return key
    return module


def _rank_and_scale(config: dict[str, Any], module: str) -> tuple[int, float]:
    ranks = config.get("rank_pattern") or {}
    alphas = config.get("alpha_pattern") or {}
    r = ranks.get(_pattern_key(ranks, module), config["r"])
    alpha = alphas.get(_pattern_key(alphas, module), config.get("lora_alpha", 8))
    if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
        raise ValueError(f"rank {r!r} for {module} is not a whole number above 0")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise ValueError(f"lora_alpha {alpha!r} for {module} is not a number")
    return r, alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def _key(adapter: Path, base_files: list[Path]) -> str:
    """Changes whenever the adapter or the base weights change."""
    sources = [adapter / "adapter_model.safetensors", adapter / "adapter_config.json"]
    return fingerprint([*sources, *base_files], FORMAT_VERSION)


def merged_weights(adapter: Path, config: dict[str, Any], base_files: list[Path]) -> Path:
    """The path of the merged weights, building them first when there is no cached copy.
    Raises NotMergeable (load it through peft), ValueError or KeyError (a broken adapter).
    Where the cache dir cannot be written, the merge lives in a temp folder for this run."""
    folder = paths.cache_dir() / "merged" / short_key(str(adapter.resolve()))
    key = _key(adapter, base_files)
    target = folder / key / MERGED_FILE
    if _readable(target):
        return target
    tensors = _merge(adapter, config, base_files)
    from safetensors.torch import save_file

    metadata = {"merged_from": json.dumps(str(adapter))}
    try:
        with atomic_path(target) as part:
            save_file(tensors, str(part), metadata=metadata)
    except OSError:
        scratch = tempfile.mkdtemp(prefix="scribe-merged-")
        atexit.register(shutil.rmtree, scratch, True)
        target = Path(scratch) / MERGED_FILE
        save_file(tensors, str(target), metadata=metadata)
        return target
    _remove_older(folder, key)
    return target


def _remove_older(folder: Path, keep: str) -> None:
    """Merges of earlier versions of this adapter (or of its base), and those of the first
    layout (merged/KEY/, keyed by no adapter): each is a whole copy of the base model, and
    nothing reads them again."""
    try:
        others = [p for p in folder.iterdir() if p.name != keep]
        others += [p for p in folder.parent.iterdir() if (p / MERGED_FILE).is_file()]
    except OSError:
        return
    for other in others:
        shutil.rmtree(other, ignore_errors=True)


def _readable(file: Path) -> bool:
    """A cached merge that is complete (a damaged one is simply built again)."""
    if not file.exists():
        return False
    try:
        from safetensors import safe_open

        with safe_open(str(file), framework="pt") as handle:
            return len(list(handle.keys())) > 0
    except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt
        return False


def _split(lora_key: str) -> tuple[str, str]:
    """'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight' ->
    ('transformer.h.0.attn.c_attn', 'lora_A.weight'); NotMergeable for a tensor that is not a
    LoRA factor of a block's Conv1D."""
    name = lora_key.removeprefix(PREFIX)
    module, sep, part = name.rpartition(".lora_")
    part = "lora_" + part
    if not sep or part not in ("lora_A.weight", "lora_B.weight", "lora_B.bias"):
        raise NotMergeable(f"{lora_key} is not a LoRA factor")
    if not CONV1D.fullmatch(module):
        raise NotMergeable(f"{module} is not one of the blocks' Conv1D layers")
    return module, part


def _merge(adapter: Path, config: dict[str, Any], base_files: list[Path]) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    lora = load_file(str(adapter / "adapter_model.safetensors"))
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in lora.items():
        module, part = _split(key)
        modules.setdefault(module, {})[part] = tensor.to(torch.float32)
    base: dict[str, torch.Tensor] = {}
    for file in base_files:
        for key, tensor in load_file(str(file)).items():
            base[key.removeprefix("transformer.")] = tensor.to(torch.float32)
    with_bias = bool(config.get("lora_bias"))
    for module, parts in modules.items():
        name = module.removeprefix("transformer.")
        if "lora_A.weight" not in parts or "lora_B.weight" not in parts:
            raise ValueError(f"{module} lacks its lora_A or lora_B weight")
        if ("lora_B.bias" in parts) != with_bias:
            raise ValueError(
                f"lora_bias is {with_bias} but {module} "
                f"{'has' if 'lora_B.bias' in parts else 'lacks'} a lora_B.bias"
            )
        a, b = parts["lora_A.weight"], parts["lora_B.weight"]
        r, scale = _rank_and_scale(config, module)
        weight = f"{name}.weight"
        if weight not in base:
            raise KeyError(f"the base model has no {weight} for the adapter's {module}")
        fan_in, fan_out = base[weight].shape  # Conv1D: [in, out]
        if a.shape != (r, fan_in) or b.shape != (fan_out, r):
            raise ValueError(
                f"{module}'s tensors have rank {a.shape[0]}, but the config gives it r = {r}; "
                "fix r or rank_pattern in adapter_config.json"
            )
        base[weight] = base[weight] + (b @ a).T * scale
        if with_bias:
            base[f"{name}.bias"] = base[f"{name}.bias"] + parts["lora_B.bias"] * scale
    tied = "lm_head.weight" in base and "wte.weight" in base
    if tied and torch.equal(base["lm_head.weight"], base["wte.weight"]):
        del base["lm_head.weight"]  # tied: Weights serves it from wte
    return {k: v.contiguous() for k, v in base.items()}
