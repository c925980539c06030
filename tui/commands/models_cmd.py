"""`scribe models`: the models available on this machine."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scribe.engine.runtime.catalog import ModelInfo


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list the models available locally")
    parser.set_defaults(func=run)


def _human(n: float, units: tuple[str, ...], step: int) -> str:
    for unit in units:
        if abs(n) < step:
            return f"{n:.0f}{unit}" if unit == units[0] else f"{n:.1f}{unit}"
        n /= step
    return f"{n:.1f}{units[-1]}"


def _metrics(card: dict) -> str:
    """A finetuned model's test perplexity before -> after (from its scribe.json card)."""
    metrics = card.get("metrics")
    if not isinstance(metrics, dict):
        return ""
    before, after = metrics.get("test_perplexity_before"), metrics.get("test_perplexity_after")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after)):
        return ""  # absent, or a hand-edited card: show nothing rather than fail
    return f"ppl {before:.1f} -> {after:.1f}"


def _label(info: ModelInfo, default: str | None) -> str:
    marks = [
        "default" if default in (info.name, str(info.path)) else "",
        "adapter" if info.adapter else "",
        "broken" if info.broken else "",
    ]
    return info.name + "".join(f" ({mark})" for mark in marks if mark)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from scribe.engine import paths
    from scribe.engine.runtime.catalog import available_models
    from scribe.engine.runtime.model_files import default_model_spec

    console = Console()
    models = available_models()
    if not models:
        console.print(
            f"No models yet. Put one under {paths.models_dir()}, train one with "
            "`scribe finetune`, or use a hub id such as --model gpt2 once online."
        )
        return 0
    default = default_model_spec()
    # Paths are long: they go below the table, whole, so the table stays readable at 80 columns.
    table = Table("name", "where", "params", "size", "context", "base", "metrics")
    for info in models:
        table.add_row(
            _label(info, default),
            info.where,
            _human(info.parameters, ("", "K", "M", "B"), 1000),
            _human(info.size_bytes, ("B", "KB", "MB", "GB"), 1024),
            str(info.context or "?"),
            info.base,
            _metrics(info.card),
        )
    console.print(table)
    for info in models:
        console.print(f"{info.name}: {info.path}", highlight=False, soft_wrap=True)
    for info in models:
        if info.broken:  # the line `--model NAME` would fail with, so the fix is at hand
            console.print(f"{info.name} is broken: {info.problem}", highlight=False, soft_wrap=True)
    return 0
