"""A LoRA adapter merged into its GPT-2 base without peft or transformers, so an adapter runs on
the fast GPT-2 path (and its int8/int4 weights) like any full model.

peft stores, per adapted module M, `...M.lora_A.weight` [r, in] and `...M.lora_B.weight`
[out, r]. For GPT-2's Conv1D (weights stored [in, out], peft's `fan_in_fan_out=True`) the merged
weight is W + scale * (B @ A)^T, scale = lora_alpha / r (or / sqrt(r) with rsLoRA): exactly
what peft's merge_and_unload computes. The merged tensors are written once, atomically, to the
cache dir, keyed by the adapter's and the base's files, and read lazily after that.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.files.atomic import atomic_path
from scribe.engine.files.derived import fingerprint

MERGED_FILE = "merged.safetensors"
FORMAT_VERSION = "lora-merge-1"


def mergeable(adapter_config: dict[str, Any]) -> bool:
    """A plain LoRA (no DoRA, no trained biases or extra modules) merges exactly this way."""
    return (
        adapter_config.get("peft_type") == "LORA"
        and adapter_config.get("fan_in_fan_out") is True
        and adapter_config.get("bias", "none") == "none"
        and not adapter_config.get("use_dora")
        and not adapter_config.get("modules_to_save")
        and isinstance(adapter_config.get("r"), int)
        and adapter_config["r"] > 0
    )


def _scale(config: dict[str, Any]) -> float:
    r, alpha = config["r"], config.get("lora_alpha", config["r"])
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def _key(adapter: Path, base_files: list[Path]) -> str:
    """Changes whenever the adapter or the base weights change."""
    sources = [adapter / "adapter_model.safetensors", adapter / "adapter_config.json"]
    return fingerprint([*sources, *base_files], FORMAT_VERSION)


def merged_weights(adapter: Path, config: dict[str, Any], base_files: list[Path]) -> Path:
    """The path of the merged weights, building them first when there is no cached copy."""
    target = paths.cache_dir() / "merged" / _key(adapter, base_files) / MERGED_FILE
    if _readable(target):
        return target
    tensors = _merge(adapter, config, base_files)
    from safetensors.torch import save_file

    with atomic_path(target) as part:
        save_file(tensors, str(part), metadata={"merged_from": json.dumps(str(adapter))})
    return target


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


def _module(lora_key: str) -> str:
    """'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight' -> 'h.0.attn.c_attn'."""
    name = lora_key.removeprefix("base_model.model.").rsplit(".lora_", 1)[0]
    return name.removeprefix("transformer.")


def _merge(adapter: Path, config: dict[str, Any], base_files: list[Path]) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    base: dict[str, torch.Tensor] = {}
    for file in base_files:
        for key, tensor in load_file(str(file)).items():
            base[key.removeprefix("transformer.")] = tensor.to(torch.float32)
    lora = load_file(str(adapter / "adapter_model.safetensors"))
    scale = _scale(config)
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in lora.items():
        pairs.setdefault(_module(key), {})["A" if ".lora_A." in key else "B"] = tensor
    for module, pair in pairs.items():
        a, b = pair["A"], pair["B"]
        weight = f"{module}.weight"
        if weight not in base:
            raise KeyError(f"the base model has no {weight} for the adapter's {module}")
        delta = (b.to(torch.float32) @ a.to(torch.float32)).T * scale
        base[weight] = base[weight] + delta
    tied = "lm_head.weight" in base and "wte.weight" in base
    if tied and torch.equal(base["lm_head.weight"], base["wte.weight"]):
        del base["lm_head.weight"]  # tied: Weights serves it from wte
    return {k: v.contiguous() for k, v in base.items()}
