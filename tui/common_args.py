"""Flags shared by the commands that generate text, and turning them into GenerationOptions."""

from __future__ import annotations

import argparse
from typing import Any


def add_model_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="M",
        help="a model folder, a name under the data dir's models/, or a hub id (e.g. gpt2)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "int8", "int4"),
        default="auto",
        help="weights to run with: auto (int8 for models of 20M+ parameters, else fp32), "
        "fp32, bf16, int8 or int4; quantized weights are cached beside the model",
    )


def add_template_args(parser: argparse.ArgumentParser, template_help: str) -> None:
    parser.add_argument("-t", "--template", metavar="NAME", help=template_help)
    parser.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="a template variable (repeatable)",
    )


def add_generation_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("generation")
    group.add_argument("--max-tokens", type=int, metavar="N", help="most new tokens to generate")
    group.add_argument("--temperature", type=float, metavar="T", help="0 is greedy (deterministic)")
    group.add_argument("--top-k", type=int, metavar="K", help="sample from the K likeliest (0 off)")
    group.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling mass (1 off)")
    group.add_argument("--repetition-penalty", type=float, metavar="R", help="1.0 is off")
    group.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="stop before TEXT (repeatable)"
    )
    group.add_argument("--seed", type=int, metavar="N", help="same seed, same text")


def option_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The generation options given on the command line (None where not given)."""
    return {
        "max_new_tokens": args.max_tokens,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "repetition_penalty": args.repetition_penalty,
        "seed": args.seed,
        "stop": tuple(args.stop) or None,
    }
