"""`scribe complete`: a Unix filter that streams a continuation of stdin to stdout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from scribe.tui.common_args import (
    add_command,
    add_generation_args,
    add_model_arg,
    add_template_args,
    option_overrides,
)

# Bytes kept from each end of stdin: 64 per token (generation.CHARS_PER_TOKEN_BOUND) for a
# 32k-token window, far beyond what a model here reads.
STDIN_KEEP_BYTES = 32 * 1024 * 64

SUMMARY = "print a continuation of stdin to stdout, streaming"
DESCRIPTION = "Read a draft on stdin and stream its continuation to stdout."


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(sub, "complete", SUMMARY, DESCRIPTION)
    add_model_arg(parser)
    add_template_args(parser, "frame stdin with a template")
    add_generation_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scribe.engine.errors import InputError
    from scribe.engine.text_input import decode_text, read_ends

    if args.param and not args.template:
        raise InputError("-p/--param sets a template variable; name the template with -t")
    if sys.stdout is None:  # started with stdout closed (`>&-`)
        raise InputError("stdout is closed; send it to a file or a pipe")

    from scribe.engine.prompting.fitting import CUT_MARK, fit_template
    from scribe.engine.prompting.templates import get_template

    template = get_template(args.template) if args.template else None
    values = dict(args.param)
    if template:
        template.check_values(values)  # before the model loads: a typo fails fast
        template.check_input()
    # Only the ends of a huge input can reach the window: read it bounded, never whole.
    data = read_ends(sys.stdin.buffer, STDIN_KEEP_BYTES, CUT_MARK.encode("utf-8"))
    text = decode_text(data, "stdin")
    from scribe.engine.runtime.generation import EmptyAnswer, Generator
    from scribe.engine.runtime.models import load
    from scribe.engine.runtime.options import GenerationOptions, configured_options

    options = GenerationOptions(temperature=0.8, repetition_penalty=1.0, max_new_tokens=128)
    options = configured_options(options)
    if template:
        options = template.apply_options(options)
    options = options.updated(**option_overrides(args))
    generator = Generator(load(args.model, precision=args.precision))
    prompt: str = text
    if template:
        values["input"] = text
        prompt = fit_template(
            template,
            values,
            generator.n_positions,
            options.max_new_tokens,
            generator.encode,
            generator.decode,
        )
    # A plain text's trailing blanks are healed: the reply spells them out (healing.py).
    answer = generator.answer(prompt, options, heal=not template)
    if template and template.checked:  # checked whole before it is shown (templates.py)
        try:
            reply = answer.text()
        except EmptyAnswer:  # the proofread text is an answer
            reply = ""
        _write_stream(iter([template.settle(text, reply)]))
    else:
        _write_stream(answer)
    return 0


def _write_stream(deltas: Iterator[str]) -> None:
    """Stream to stdout, flushing each delta. A reader that went away (BrokenPipeError) is the
    CLI's to end quietly; any other write failure (a full disk) becomes one error line."""
    from scribe.engine.errors import OutputError

    out = sys.stdout
    try:
        for delta in deltas:
            out.write(delta)
            out.flush()
        if out.isatty():
            out.write("\n")
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as err:
        raise OutputError(
            f"cannot write to stdout ({err.strerror}); free some space or write elsewhere"
        ) from None
