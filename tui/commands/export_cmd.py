"""`scribe export`: a model as a GGUF file for llama.cpp, with an Ollama Modelfile beside it."""

from __future__ import annotations

import argparse

from scribe.tui.common_args import add_command

# engine/export/gguf.py's QUANTS, repeated: importing it (gguf, numpy) would slow --help.
QUANTS = ("f16", "q8_0", "q4_0")

EPILOG = """\
examples:
  scribe export my-style                         ./my-style-f16.gguf and ./Modelfile
  scribe export my-style --quant q8_0 --out exports/
  scribe export default --quant q4_0             the embedded default model
  ollama create my-style -f Modelfile            then: ollama run my-style "Once upon a time"
  llama-cli -m my-style-f16.gguf -p "Once upon a time"

A LoRA adapter is merged into its base model first. Norms, biases and position embeddings stay
f32; a matrix whose rows do not fill whole 32-value blocks is written f16 under q8_0 and q4_0.
"""

SUMMARY = "write a model as a GGUF file for llama.cpp / Ollama"
DESCRIPTION = (
    "Convert a GPT-2 model (a full finetune, a LoRA adapter, or the default\n"
    "model) to a GGUF file that llama.cpp loads, with an Ollama Modelfile beside it."
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(sub, "export", SUMMARY, DESCRIPTION, EPILOG)
    parser.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        help="a model folder, a name under the data dir's models/, a hub id, or 'default'; "
        "omitted: the default model",
    )
    parser.add_argument("--format", choices=("gguf",), default="gguf", help="gguf (the default)")
    parser.add_argument(
        "--quant", choices=QUANTS, default="f16", help="weight type: f16 (default), q8_0, q4_0"
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="the .gguf file to write, or a folder (made if needed) for NAME-QUANT.gguf; "
        "default: the current folder",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing .gguf file or Modelfile (default: refuse)",
    )
    parser.set_defaults(func=run)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def run(args: argparse.Namespace) -> int:
    from scribe.engine.export.gguf import export_gguf

    result = export_gguf(args.name, args.quant, args.out, force=args.force)
    print(
        f"wrote {result.gguf_path} ({result.quant}, {result.tensors} tensors, "
        f"{_size(result.size_bytes)})"
    )
    if result.f16_fallbacks:
        print(
            f"  {len(result.f16_fallbacks)} matrices written f16 (rows not a multiple of 32): "
            + ", ".join(result.f16_fallbacks)
        )
    print(f"wrote {result.modelfile}")
    print(
        f"try: ollama create {result.name} -f {result.modelfile}  or  "
        f"llama-cli -m {result.gguf_path} -p 'Once upon a time'"
    )
    return 0
