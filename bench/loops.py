"""Loop rate of every door: how often a continuation repeats itself, at each door's own default
options and greedy, on held-out prompts (lower is better).

    python bench/loops.py                          # the embedded default model
    python bench/loops.py --model gpt2 --samples   # also print every output, unedited
    python bench/loops.py --prompts other.txt --json out.json

Each prompt of bench/heldout/prompts.txt (one a line, newlines written as \\n; trailing spaces
are part of a prompt) goes through each door as a user would meet it, in process:

- chat: a `ChatSession` sends it as the writer's message (the `chat` template's options);
- complete: `scribe complete` reads it on stdin (its own defaults, as with no flags);
- editor: the completion service (LSP and JSONL) completes it as a document with the cursor at
  the end, `python` for code prompts, `markdown` for the rest (its stop rule: prose ends at the
  sentence, code at the line).

Every door builds its options itself; the bench only changes, in the options a door hands to
the engine, the number of new tokens (NEW_TOKENS), the seed, and for the greedy runs the
temperature (0), so a door's defaults are measured even as they change. A door's sampled runs
take SEEDS; a greedy default runs once. When GenerationOptions has the loop guard
(`dry_multiplier`), greedy also runs with the guard off (GUARD_OFF), to show what it does.

A continuation loops by `loop_reason` below. The prompts' kinds (prose, chat request, code) are
told from their text (`prompt_kind`), so a file of other prompts in the same format works too.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROMPTS = HERE / "heldout" / "prompts.txt"
DOORS = ("chat", "complete", "editor")
NEW_TOKENS = 120
SEEDS = (0, 1, 2)
# Greedy with the loop guards off: each option is set only where GenerationOptions has it.
GUARD_OFF = {"dry_multiplier": 0.0, "repetition_penalty": 1.0}

# -- the loop detector -----------------------------------------------------------------------
# A continuation loops when any of these holds (`loop_reason` says which):
#   n-gram:  (prose) some run of NGRAM words occurs REPEATS times or more; words are compared
#            lowercased, without punctuation, and occurrences may overlap. A longer repeated
#            run contains a repeated NGRAM-word one, so this covers "4 or more words".
#   line:    some line with LINE_CHARS or more non-space characters occurs REPEATS times or
#            more (compared without surrounding whitespace). For code this replaces the n-gram
#            rule: code repeats short phrases legitimately (`self.x = x`), not whole lines.
#   tail:    the last TAIL_SHARE of the text (whitespace runs read as one space) already occurs
#            earlier, as a copy that starts before the tail does (it may overlap the tail, as
#            a period of a cycle does); only tails of TAIL_MIN_CHARS or more count.
#   stutter: a piece of STUTTER_MIN_CHARS or more characters, with 2 letters or more, follows
#            itself STUTTER_REPEATS times in a row (`os.path.path.path.path`, `line in line in
#            line in line in`): a loop inside a single line, too short for the tail rule.
NGRAM = 4
REPEATS = 3
LINE_CHARS = 10
TAIL_SHARE = 0.3
TAIL_MIN_CHARS = 20
STUTTER_MIN_CHARS = 3
STUTTER_REPEATS = 4

WORD = re.compile(r"[\w']+")
STUTTER = re.compile(rf"(.{{{STUTTER_MIN_CHARS},40}}?)\1{{{STUTTER_REPEATS - 1},}}", re.DOTALL)


def loop_reason(text: str, code: bool = False) -> str | None:
    """Why `text` (a continuation, without its prompt) loops, or None when it does not; `code`
    selects the rules for code (the line rule instead of the n-gram rule)."""
    if not code:
        words = [w.strip("'") for w in WORD.findall(text.lower())]
        words = [w for w in words if w]
        grams = Counter(tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1))
        if grams:
            gram, count = grams.most_common(1)[0]
            if count >= REPEATS:
                return f"n-gram {' '.join(gram)!r} x{count}"
    lines = Counter(line.strip() for line in text.splitlines())
    for line, count in lines.most_common():
        if count < REPEATS:
            break
        if len(re.sub(r"\s", "", line)) >= LINE_CHARS:
            return f"line {line!r} x{count}"
    flat = re.sub(r"\s+", " ", text).strip()
    cut = int(len(flat) * (1 - TAIL_SHARE))
    tail = flat[cut:]
    if len(tail) >= TAIL_MIN_CHARS and flat.find(tail) < cut:
        return f"tail {tail[:40]!r}{'...' if len(tail) > 40 else ''} repeats"
    for match in STUTTER.finditer(text):
        unit = match.group(1)
        if sum(c.isalpha() for c in unit) >= 2:
            return f"stutter {unit!r} x{len(match.group(0)) // len(unit)}"
    return None


def is_looping(text: str, code: bool = False) -> bool:
    """Whether a continuation loops (see `loop_reason` for the rules)."""
    return loop_reason(text, code) is not None


# -- prompts -------------------------------------------------------------------------------------
CODE_START = re.compile(r"^(import \w|from [\w.]+ import |def \w|class \w|async def |@\w)", re.M)
REQUEST_WORDS = {
    "write", "tell", "give", "explain", "describe", "suggest", "list", "summarize", "summarise",
    "help", "draft", "compose", "make", "create", "can", "could", "would", "please", "what",
    "how", "why", "who", "when", "where", "which", "is", "are", "do", "should",
}  # fmt: skip


def read_prompts(path: Path) -> list[str]:
    """One prompt a line; `\\n`, `\\t` and `\\\\` are a newline, a tab and a backslash."""
    prompts = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            prompts.append(re.sub(r"\\(.)", _unescape, line.rstrip("\r")))
    return prompts


def _unescape(match: re.Match[str]) -> str:
    return {"n": "\n", "t": "\t", "\\": "\\"}.get(match.group(1), match.group(0))


def prompt_kind(prompt: str) -> str:
    """ "code" (Python), "chat" (a one-line request or question) or "prose" (text to go on)."""
    if CODE_START.search(prompt):
        return "code"
    words = WORD.findall(prompt.lower())
    one_line = "\n" not in prompt.strip()
    if one_line and words and words[0] in REQUEST_WORDS and prompt.rstrip()[-1:] in ".?!":
        return "chat"
    return "prose"


# -- the doors, in process -------------------------------------------------------------------------
class DoorGenerator:
    """Stands in for the engine's Generator inside the doors: records the options a door asks
    for and runs them with the bench's changes (`overrides`) on the real Generator."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.overrides: dict[str, Any] = {}
        self.asked: Any = None  # the options the door built for the last request

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def _options(self, options: Any) -> Any:
        from scribe.engine.runtime.options import GenerationOptions

        self.asked = options or GenerationOptions()
        return self.asked.updated(**self.overrides)

    def stream(self, prompt: Any, options: Any = None, cancel: Any = None, **kw: Any) -> Any:
        return self.real.stream(prompt, self._options(options), cancel, **kw)

    def answer(self, prompt: Any, options: Any = None, cancel: Any = None, **kw: Any) -> Any:
        return self.real.answer(prompt, self._options(options), cancel, **kw)


@contextlib.contextmanager
def doors_on(spec: str | None, precision: str) -> Iterator[tuple[DoorGenerator, dict]]:
    """The model loaded once, every door's `load` and `Generator` pointing at it, and a runner
    per door: (door generator, {door: run(prompt, kind) -> text})."""
    from unittest import mock

    from scribe.engine.runtime import generation, models

    loaded = models.load(spec, precision=precision)
    door = DoorGenerator(generation.Generator(loaded))
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(models, "load", lambda *a, **k: loaded))
        stack.enter_context(mock.patch.object(generation, "Generator", lambda _loaded: door))
        runners = {
            "chat": _chat_runner(spec),
            "complete": _complete_runner(spec, precision),
            "editor": stack.enter_context(_editor_runner(spec, precision)),
        }
        yield door, runners


def _chat_runner(spec: str | None) -> Callable[[str, str], str]:
    from scribe.engine.chat.engine import load_engine
    from scribe.engine.chat.session import ChatSession

    engine = load_engine(spec)

    def run(prompt: str, kind: str) -> str:
        session = ChatSession(None, loader=lambda _spec: engine)
        session.load_model(spec)
        return session.send(prompt).run().content

    return run


def _complete_runner(spec: str | None, precision: str) -> Callable[[str, str], str]:
    from scribe.tui.cli import build_parser
    from scribe.tui.commands import complete_cmd

    argv = ["complete", "--precision", precision] + (["--model", spec] if spec else [])

    def run(prompt: str, kind: str) -> str:
        args = build_parser().parse_args(argv)
        stdin = io.TextIOWrapper(io.BytesIO(prompt.encode("utf-8")), encoding="utf-8")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), _swap_stdin(stdin):
            complete_cmd.run(args)
        return out.getvalue()

    return run


@contextlib.contextmanager
def _swap_stdin(stream: io.TextIOWrapper) -> Iterator[None]:
    saved, sys.stdin = sys.stdin, stream
    try:
        yield
    finally:
        sys.stdin = saved


@contextlib.contextmanager
def _editor_runner(spec: str | None, precision: str) -> Iterator[Callable[[str, str], str]]:
    from scribe.plugins.servers.completion_service import CompletionRequest, CompletionService

    service = CompletionService(spec, precision=precision)
    service.start()
    documents = iter(range(1_000_000))

    def run(prompt: str, kind: str) -> str:
        # A new document each time: the service keeps a prompt window per document.
        ext, language = ("py", "python") if kind == "code" else ("md", "markdown")
        request = CompletionRequest(
            document=f"file:///bench/doc{next(documents)}.{ext}",
            text=prompt,
            cursor=len(prompt),
            language=language,
            max_tokens=NEW_TOKENS,
        )
        suggestion = service.complete_now(request)
        return suggestion.text if suggestion is not None else ""

    try:
        yield run
    finally:
        service.close()


# -- the bench ----------------------------------------------------------------------------------
@dataclass
class Run:
    door: str
    prompt: int  # index in the prompts file
    kind: str
    mode: str  # "defaults", "greedy" or "greedy, guard off"
    seed: int | None
    text: str = ""
    reason: str | None = None  # why it loops (loop_reason), None when it does not
    asked: dict[str, Any] = field(default_factory=dict)  # the door's own options

    @property
    def looping(self) -> bool:
        return self.reason is not None


def option_fields() -> set[str]:
    from dataclasses import fields

    from scribe.engine.runtime.options import GenerationOptions

    return {f.name for f in fields(GenerationOptions)}


def describe(options: Any) -> dict[str, Any]:
    """The options a door asked for, as JSON-friendly values (every field but max tokens, which
    the bench sets)."""
    from dataclasses import asdict

    values = asdict(options)
    values.pop("max_new_tokens", None)
    values["stop"] = list(values.get("stop") or ())
    return values


def bench(
    spec: str | None, precision: str, prompts: list[str], doors: list[str], log: Any
) -> list[Run]:
    fields = option_fields()
    guard_off = {k: v for k, v in GUARD_OFF.items() if k in fields}
    runs: list[Run] = []
    with doors_on(spec, precision) as (door_gen, runners):
        for door in doors:
            started = time.perf_counter()
            for index, prompt in enumerate(prompts):
                go = functools.partial(_run_once, door_gen, runners[door], prompt=prompt, log=log)
                first = go(Run(door, index, prompt_kind(prompt), "defaults", SEEDS[0]))
                runs.append(first)
                if first.asked.get("temperature", 1) > 0:  # sampled: more seeds, then greedy
                    runs.extend(go(replace(first, seed=seed)) for seed in SEEDS[1:])
                    runs.append(go(replace(first, mode="greedy", seed=None), temperature=0.0))
                else:  # the door is greedy already: its default run is the greedy run
                    runs.append(replace(first, mode="greedy", seed=None))
                if "dry_multiplier" in fields:
                    off = replace(first, mode="greedy, guard off", seed=None)
                    runs.append(go(off, temperature=0.0, **guard_off))
            print(f"  {door}: {time.perf_counter() - started:.0f}s", file=log)
    return runs


def _run_once(
    door_gen: DoorGenerator,
    runner: Callable[[str, str], str],
    run: Run,
    prompt: str,
    log: Any,
    **changes: Any,
) -> Run:
    """`run` (its door, prompt, kind, mode and seed) done: the door run once, with the bench's
    changes (NEW_TOKENS, the seed, and `changes`) on the options it builds."""
    from scribe.engine.errors import ScribeError

    door_gen.overrides = {"max_new_tokens": NEW_TOKENS, **changes}
    if run.seed is not None:
        door_gen.overrides["seed"] = run.seed
    door_gen.asked = None
    text = ""
    try:
        text = runner(prompt, run.kind)
    except ScribeError as err:  # an empty answer, three times over
        print(f"  {run.door} #{run.prompt} {run.mode}: {err}", file=log)
    asked = describe(door_gen.asked) if door_gen.asked is not None else {}
    reason = loop_reason(text, code=run.kind == "code")
    return replace(run, text=text, reason=reason, asked=asked)


def rate(runs: list[Run]) -> dict[str, Any]:
    loops = sum(r.looping for r in runs)
    empty = sum(not r.text.strip() for r in runs)  # says nothing: never loops, never helps
    return {
        "loops": loops,
        "runs": len(runs),
        "rate": loops / len(runs) if runs else None,
        "empty": empty,
    }


def cell(figures: dict[str, Any]) -> str:
    if not figures["runs"]:
        return "-"
    return f"{figures['loops']}/{figures['runs']} {100 * figures['rate']:3.0f}%"


def summary(runs: list[Run], doors: list[str]) -> dict[str, Any]:
    modes = [
        m for m in ("defaults", "greedy", "greedy, guard off") if any(r.mode == m for r in runs)
    ]
    kinds = sorted({r.kind for r in runs})
    out: dict[str, Any] = {}
    for door in doors:
        mine = [r for r in runs if r.door == door]
        out[door] = {
            mode: {
                **rate([r for r in mine if r.mode == mode]),
                "by_kind": {
                    k: rate([r for r in mine if r.mode == mode and r.kind == k]) for k in kinds
                },
            }
            for mode in modes
        }
    return out


def print_report(runs: list[Run], doors: list[str], prompts: list[str], samples: bool) -> None:
    figures = summary(runs, doors)
    modes = list(next(iter(figures.values())).keys()) if figures else []
    kinds = Counter(prompt_kind(p) for p in prompts)
    print(
        f"loop rate: {len(prompts)} prompts ("
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        + f"), {NEW_TOKENS} new tokens, seeds {', '.join(map(str, SEEDS))} where sampled"
    )
    print(f"{'door':10}" + "".join(f" {m:>18}" for m in modes) + "   empty, per column")
    for door in doors:
        empty = ", ".join(str(figures[door][m]["empty"]) for m in modes)
        print(
            f"{door:10}" + "".join(f" {cell(figures[door][m]):>18}" for m in modes) + f"   {empty}"
        )
    print("\nby prompt kind (loops/runs):")
    print(f"{'door':10} {'mode':18}" + "".join(f" {k:>12}" for k in sorted(kinds)))
    for door in doors:
        for mode in modes:
            by_kind = figures[door][mode]["by_kind"]
            row = "".join(
                f" {by_kind[k]['loops']:>5}/{by_kind[k]['runs']:<6}" for k in sorted(kinds)
            )
            print(f"{door:10} {mode:18}{row}")
    print("\neach door's own options (as it asked the engine, before the bench's changes):")
    seen: set[tuple[str, str]] = set()
    for run in runs:
        if run.mode == "defaults" and (run.door, run.kind) not in seen and run.asked:
            seen.add((run.door, run.kind))
            shown = ", ".join(
                f"{k}={v!r}" for k, v in run.asked.items() if v is not None and v is not False
            )
            print(f"  {run.door:8} {run.kind:5}: {shown}")
    looping = [r for r in runs if r.looping]
    if looping:
        print("\nwhy each looping run loops:")
        for r in looping:
            seed = f" seed {r.seed}" if r.seed is not None and r.mode == "defaults" else ""
            print(f"  {r.door:8} #{r.prompt:<2} {r.kind:5} {r.mode}{seed}: {r.reason}")
    if samples:
        print("\nsamples, unedited (the prompt, then each run's continuation between bars):")
        for index, prompt in enumerate(prompts):
            print(f"\n=== prompt #{index} ({prompt_kind(prompt)}): {prompt!r}")
            for r in runs:
                if r.prompt != index:
                    continue
                seed = f" seed {r.seed}" if r.seed is not None and r.mode == "defaults" else ""
                verdict = f"LOOPS: {r.reason}" if r.looping else "ok"
                print(f"--- {r.door}, {r.mode}{seed} [{verdict}]")
                print(r.text)
            print("---")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model spec (default: ours)")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "int8", "int4"),
        help="weights to run with, as the doors' --precision (default: auto)",
    )
    parser.add_argument("--prompts", type=Path, default=PROMPTS, help="one prompt a line")
    parser.add_argument(
        "--door", action="append", choices=DOORS, help="only this door (repeatable; default all)"
    )
    parser.add_argument("--samples", action="store_true", help="print every output, unedited")
    parser.add_argument("--json", type=Path, help="write the figures and outputs to this file")
    args = parser.parse_args()
    prompts = read_prompts(args.prompts)
    doors = args.door or list(DOORS)
    spec = None if args.model == "default" else args.model
    started = time.perf_counter()
    runs = bench(spec, args.precision, prompts, doors, sys.stderr)
    print_report(runs, doors, prompts, args.samples)
    print(f"\n({time.perf_counter() - started:.0f}s)")
    if args.json:
        result = {
            "model": args.model,
            "prompts": str(args.prompts),
            "new_tokens": NEW_TOKENS,
            "seeds": list(SEEDS),
            "doors": summary(runs, doors),
            "runs": [{**r.__dict__, "looping": r.looping} for r in runs],
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
