"""Whether the built-in templates do their job, on held-out sentences and sections.

    python bench/templates.py                        # the embedded default model
    python bench/templates.py --model gpt2 --json out.json
    python bench/templates.py --grammar other.tsv --titles other.tsv --examples 10

- fix-grammar, on each `noisy<TAB>clean` row of bench/heldout/grammar.tsv: the answer's
  character-level edit distance to the clean sentence divided by the noisy sentence's, averaged
  over the rows. 0 is a perfect correction, 1.0 is what copying the input scores, more than 1
  is worse than doing nothing. Answers are compared without surrounding whitespace.
- title, on each `title<TAB>text` row of bench/heldout/titles.tsv: the share of answers that are
  one non-empty line of at most 12 words (the heading given in the file is shown beside the
  answer, not scored), and how many of them are the model's own: title's `check` replaces an
  answer that is no title for its text with one made from the text, as `scribe complete` does.

Each template runs as `scribe complete -t NAME` runs it (its frame, its `cut`, its own
[options] over GenerationOptions' defaults), with --seed (default 0) for reproducibility;
config.toml's [options] are left out, so the figures are the shipped defaults'. In the TSV
files `\\n`, `\\t` and `\\\\` stand for a newline, a tab and a backslash. The rows are in no
training corpus of scribe's (bench/heldout/README.md).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GRAMMAR = HERE / "heldout" / "grammar.tsv"
TITLES = HERE / "heldout" / "titles.tsv"
TITLE_MAX_WORDS = 12


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings, by characters (insert, delete, substitute)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def grammar_ratio(answer: str, noisy: str, clean: str) -> float:
    """How far the answer still is from the clean sentence, against how far the input was."""
    return edit_distance(answer.strip(), clean) / edit_distance(noisy, clean)


def is_title(answer: str) -> bool:
    """One non-empty line of at most TITLE_MAX_WORDS words."""
    text = answer.strip()
    return bool(text) and "\n" not in text and len(text.split()) <= TITLE_MAX_WORDS


def shares_a_word(answer: str, text: str) -> bool:
    """A crude sign that a title is about its text: a word of 4+ letters found in both."""
    words = set(re.findall(r"[a-z]{4,}", text.lower()))
    return any(w in words for w in re.findall(r"[a-z]{4,}", answer.lower()))


def read_tsv(path: Path) -> list[tuple[str, str]]:
    """Rows of two tab-separated fields; blank lines are skipped."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise SystemExit(f"{path}:{number}: expected 2 tab-separated fields, not {len(fields)}")
        first, second = (re.sub(r"\\(.)", _unescape, f) for f in fields)
        rows.append((first, second))
    return rows


def _unescape(match: re.Match[str]) -> str:
    return {"n": "\n", "t": "\t", "\\": "\\"}.get(match.group(1), match.group(0))


class TemplateRunner:
    """One model, running built-in templates as `scribe complete -t NAME` does."""

    def __init__(self, spec: str | None, precision: str, seed: int) -> None:
        from scribe.engine.runtime.generation import Generator
        from scribe.engine.runtime.models import load

        self.generator = Generator(load(spec, precision=precision))
        self.seed = seed
        self.templates: dict[str, Any] = {}
        self.raw = ""  # the model's own answer in the last run, before the template's check

    def template(self, name: str) -> tuple[Any, Any]:
        """The template and the options it runs with."""
        from scribe.engine.prompting.templates import get_template
        from scribe.engine.runtime.options import GenerationOptions

        if name not in self.templates:
            template = get_template(name)
            if not template.builtin:
                print(f"note: template '{name}' is the user's {template.source}", file=sys.stderr)
            options = template.apply_options(GenerationOptions()).updated(seed=self.seed)
            self.templates[name] = (template, options)
        return self.templates[name]

    def run(self, name: str, text: str) -> str:
        """The answer, as `scribe complete -t NAME` prints it; "" when the engine gives up on an
        empty answer."""
        from scribe.engine.prompting.fitting import fit_template
        from scribe.engine.runtime.generation import EmptyAnswer

        template, options = self.template(name)
        generator = self.generator
        prompt = fit_template(
            template,
            {"input": text},
            generator.n_positions,
            options.max_new_tokens,
            generator.encode,
            generator.decode,
        )
        try:
            answer = "".join(generator.answer(prompt, options))
        except EmptyAnswer:
            answer = ""
        self.raw = answer
        return template.settle(text, answer)


def bench_grammar(runner: TemplateRunner, rows: list[tuple[str, str]]) -> dict[str, Any]:
    items = []
    for noisy, clean in rows:
        if noisy == clean:
            raise SystemExit(f"grammar row with nothing to fix: {noisy!r}")
        answer = runner.run("fix-grammar", noisy)
        ratio = grammar_ratio(answer, noisy, clean)
        items.append({"noisy": noisy, "clean": clean, "answer": answer, "ratio": ratio})
    ratios = [item["ratio"] for item in items]
    return {
        "rows": len(items),
        "mean_ratio": statistics.fmean(ratios),
        # Each ratio capped at 1 (no worse than copying): one runaway answer cannot swamp it.
        "mean_capped": statistics.fmean(min(r, 1.0) for r in ratios),
        "median_ratio": statistics.median(ratios),
        "exact": sum(item["answer"].strip() == item["clean"] for item in items),
        "better_than_input": sum(r < 1 for r in ratios),
        "copied_input": sum(item["answer"].strip() == item["noisy"] for item in items),
        "items": items,
    }


def bench_titles(runner: TemplateRunner, rows: list[tuple[str, str]]) -> dict[str, Any]:
    items = []
    for heading, text in rows:
        answer = runner.run("title", text)
        items.append(
            {
                "heading": heading,
                "text": text,
                "answer": answer,
                "model_answer": runner.raw,
                "ok": is_title(answer),
                "model_ok": is_title(runner.raw),
                # The check kept the model's title (else the title was made from the text).
                "kept": answer == runner.raw.strip(),
            }
        )
    ok = sum(item["ok"] for item in items)
    topical = sum(shares_a_word(item["answer"], item["text"]) for item in items)
    return {
        "rows": len(items),
        "one_line": ok,
        "share": ok / len(items),
        "shares_a_word": topical,
        "model_one_line": sum(item["model_ok"] for item in items),
        "kept": sum(item["kept"] for item in items),
        "items": items,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model spec (default: ours)")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "int8", "int4"),
        help="weights to run with, as the doors' --precision (default: auto)",
    )
    parser.add_argument("--grammar", type=Path, default=GRAMMAR, help="noisy<TAB>clean rows")
    parser.add_argument("--titles", type=Path, default=TITLES, help="title<TAB>text rows")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--examples", type=int, default=5, help="example answers to print")
    parser.add_argument("--json", type=Path, help="write the figures and answers to this file")
    args = parser.parse_args()
    started = time.perf_counter()
    runner = TemplateRunner(
        None if args.model == "default" else args.model, args.precision, args.seed
    )
    grammar = bench_grammar(runner, read_tsv(args.grammar))
    titles = bench_titles(runner, read_tsv(args.titles))

    print(f"templates on held-out text, model {args.model}, seed {args.seed}")
    print(
        f"fix-grammar  {grammar['rows']} sentences: edit-distance ratio {grammar['mean_ratio']:.3f}"
        f" (mean; 1.0 = copied the input, lower is better); median {grammar['median_ratio']:.3f},"
        f" mean capped at 1 {grammar['mean_capped']:.3f};"
        f" exact {grammar['exact']}, better than the input {grammar['better_than_input']},"
        f" copied the input {grammar['copied_input']}"
    )
    print(
        f"title        {titles['rows']} sections: one line of at most {TITLE_MAX_WORDS} words"
        f" {titles['one_line']}/{titles['rows']} ({100 * titles['share']:.0f}%);"
        f" sharing a word of 4+ letters with the text {titles['shares_a_word']}/{titles['rows']};"
        f" the model's own title kept by the check {titles['kept']}/{titles['rows']}"
        f" (the model's alone one line {titles['model_one_line']}/{titles['rows']})"
    )
    shown = args.examples
    if shown > 0:
        print("\nfix-grammar examples (input, answer as given, clean; ratio):")
        for item in grammar["items"][:shown]:
            print(f"  in:     {item['noisy']}")
            print(f"  answer: {item['answer']!r}")
            print(f"  clean:  {item['clean']}   ({item['ratio']:.2f})")
        print("\ntitle examples (the file's heading, then the answer as given):")
        for item in titles["items"][:shown]:
            verdict = "ok" if item["ok"] else "not one short line"
            source = (
                "the model's" if item["kept"] else f"made; the model said {item['model_answer']!r}"
            )
            print(f"  {item['heading']!r:45} -> {item['answer']!r} ({verdict}; {source})")
    print(f"\n({time.perf_counter() - started:.0f}s)")
    if args.json:
        result = {
            "model": args.model,
            "seed": args.seed,
            "fix_grammar": grammar,
            "title": titles,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
