"""`scribe complete`: a Unix filter that streams a continuation of stdin to stdout."""

from __future__ import annotations

import argparse
import sys

from scribe.tui.common_args import (
    add_generation_args,
    add_model_arg,
    add_template_args,
    option_overrides,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "complete",
        help="print a continuation of stdin to stdout, streaming",
        description="Read a draft on stdin and stream its continuation to stdout.",
    )
    add_model_arg(parser)
    add_template_args(parser, "frame stdin with a template")
    add_generation_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scribe.engine.errors import InputError
    from scribe.engine.text_input import decode_text

    if args.param and not args.template:
        raise InputError("-p/--param sets a template variable; name the template with -t")

    text = decode_text(sys.stdin.buffer.read(), "stdin")
    from scribe.engine.context import fit_template
    from scribe.engine.generation import Generator
    from scribe.engine.models import load
    from scribe.engine.options import GenerationOptions
    from scribe.engine.templates import get_template

    template = get_template(args.template) if args.template else None
    options = GenerationOptions(temperature=0.8, repetition_penalty=1.0, max_new_tokens=128)
    if template:
        options = template.apply_options(options)
    options = options.updated(**option_overrides(args))
    generator = Generator(load(args.model, precision=args.precision))
    prompt: str = text
    if template:
        values = {key: value for key, value in args.param}
        values["input"] = text
        prompt = fit_template(
            template,
            values,
            generator.n_positions,
            options.max_new_tokens,
            generator.encode,
            generator.decode,
        )
    out = sys.stdout
    for delta in generator.stream(prompt, options):
        out.write(delta)
        out.flush()
    if out.isatty():
        out.write("\n")
    return 0
