"""Flags shared by the commands that generate text, and turning them into GenerationOptions."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from scribe.engine.config import PRECISIONS


def add_command(
    sub: argparse._SubParsersAction, name: str, summary: str, description: str, epilog: str = ""
) -> argparse.ArgumentParser:
    """A subcommand: `summary` is its line in `scribe --help`; an epilog keeps its own layout."""
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter,
    )


def model_spec(flag: str) -> Callable[[str], str]:
    """An argparse type for a model spec: a `~user/...` folder whose user does not exist is one
    InputError here (pathlib would raise RuntimeError deep inside model loading)."""

    def parse(text: str) -> str:
        from scribe.engine.paths import user_path

        if text.startswith("~"):
            user_path(text, flag)
        return text

    parse.__name__ = "model"
    return parse


def utf8_text(flag: str) -> Callable[[str], str]:
    """An argparse type for text: an argument that is not valid UTF-8 (Python keeps its bytes
    as lone surrogates) is one InputError here, not a traceback where it is first encoded."""

    def parse(text: str) -> str:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            from scribe.engine.errors import InputError

            byte = ord(text[err.start]) & 0xFF  # argv's byte 0xNN is kept as U+DCNN
            raise InputError(
                f"{flag}: the value is not valid UTF-8 (byte 0x{byte:02x} at offset {err.start}); "
                "give it as UTF-8 text"
            ) from None
        return text

    parse.__name__ = "text"
    return parse


def add_model_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=model_spec("--model"),
        metavar="M",
        help="a model folder, a name under the data dir's models/, or a hub id (e.g. gpt2)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
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
        type=utf8_text("-p/--param"),
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="a template variable (repeatable)",
    )


def option_value(flag: str, key: str) -> Callable[[str], int | float]:
    """An argparse type for `flag`, checked as generation option `key`. It raises InputError,
    not ArgumentTypeError, so the CLI prints one line naming the flag (argparse's own would add
    the usage text), and a NaN, an infinity or an overflowing seed never reaches torch."""

    def parse(text: str) -> int | float:
        from scribe.engine.errors import InputError
        from scribe.engine.runtime.options import typed_value

        try:
            return typed_value(key, text)
        except ValueError as err:
            raise InputError(f"{flag} {err}") from None

    parse.__name__ = key  # what argparse would name in its own messages
    return parse


def add_generation_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("generation")

    def number(flag: str, key: str, metavar: str, text: str) -> None:
        group.add_argument(flag, type=option_value(flag, key), metavar=metavar, help=text)

    number("--max-tokens", "max_new_tokens", "N", "most new tokens to generate")
    number("--temperature", "temperature", "T", "0 is greedy (deterministic)")
    number("--top-k", "top_k", "K", "sample from the K likeliest (0 off)")
    number("--top-p", "top_p", "P", "nucleus sampling mass (1 off)")
    number("--min-p", "min_p", "P", "drop tokens below P x the likeliest's chance (0 off)")
    number("--repetition-penalty", "repetition_penalty", "R", "1.0 is off")
    number("--repetition-window", "repetition_window", "N", "tokens the guards look back (0 all)")
    number("--dry-multiplier", "dry_multiplier", "M", "loop guard strength (0 off)")
    number("--dry-base", "dry_base", "B", "loop guard growth per repeated token")
    number("--dry-allowed-length", "dry_allowed_length", "N", "repeats this long are free")
    group.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="stop before TEXT (repeatable)"
    )
    number("--seed", "seed", "N", "same seed, same text")


def option_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The generation options given on the command line (None where not given)."""
    return {
        "max_new_tokens": args.max_tokens,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "min_p": args.min_p,
        "repetition_penalty": args.repetition_penalty,
        "repetition_window": args.repetition_window,
        "dry_multiplier": args.dry_multiplier,
        "dry_base": args.dry_base,
        "dry_allowed_length": args.dry_allowed_length,
        "seed": args.seed,
        "stop": tuple(args.stop) or None,
    }
