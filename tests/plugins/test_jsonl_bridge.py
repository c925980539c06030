"""`scribe serve` (JSONL mode) as a subprocess: answers, errors for bad lines, cancel, latest
wins per document, and a clean exit after answering at the end of input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.plugins.lsp_harness import SCRIBE, WAIT_S, server_env

PROMPT = "It was a bright cold day in April, and the"


def run_serve(model: Path, home: Path, lines: list[str], *args: str) -> tuple[list[dict], str, int]:
    proc = subprocess.run(
        [*SCRIBE, "serve", "--model", str(model), *args],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=server_env(home),
        timeout=WAIT_S,
    )
    return [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr, proc.returncode


@pytest.mark.slow
def test_jsonl_session(tiny_model_dir: Path, tmp_path: Path) -> None:
    # All lines arrive at once, while the model is still loading: the order of events in the
    # server does not depend on timing.
    lines = [
        json.dumps({"id": "c", "prefix": PROMPT, "max_tokens": 64}),
        json.dumps({"cancel": "c"}),
        "{not json",
        "[1, 2]",
        json.dumps({"id": 3}),
        json.dumps({"id": 4, "prefix": PROMPT, "max_tokens": 0}),
        json.dumps({"id": "a", "prefix": "The", "document": "notes"}),
        json.dumps({"id": "b", "prefix": PROMPT, "document": "notes", "max_tokens": 8}),
        json.dumps({"id": "x", "prefix": PROMPT, "suffix": "\nmore", "document": "other"}),
        json.dumps({"cancel": "nobody"}),
    ]
    replies, stderr, code = run_serve(tiny_model_dir, tmp_path, lines)
    assert code == 0, stderr
    by_id: dict = {}
    for reply in replies:
        assert set(reply) in ({"id", "text"}, {"id", "error"})
        by_id.setdefault(json.dumps(reply["id"]), []).append(reply)
    assert by_id['"c"'] == [{"id": "c", "error": "cancelled"}]
    errors = [reply["error"] for reply in by_id["null"]]
    assert len(errors) == 2
    assert "line 3: not valid JSON" in errors[0] and "one JSON object per line" in errors[0]
    assert "line 4: expected a JSON object, got an array" in errors[1]
    assert '"prefix" must be a string' in by_id["3"][0]["error"]
    assert '"max_tokens" must be from 1 to' in by_id["4"][0]["error"]
    assert by_id['"a"'][0]["error"].startswith("cancelled: a newer request")
    assert by_id['"b"'][0]["text"].strip()  # the latest for "notes" is answered
    assert by_id['"x"'][0]["text"].strip()  # another document is not cancelled
    assert "nothing to cancel" in by_id['"nobody"'][0]["error"]
    assert (tmp_path / "cache" / "serve.log").exists()


def test_lsp_jsonl_flag_and_serve_are_the_same_command() -> None:
    from scribe.tui.cli import build_parser
    from scribe.tui.commands.lsp_cmd import run

    for argv in (["lsp", "--jsonl"], ["serve"]):
        args = build_parser().parse_args(argv)
        assert args.func is run and args.jsonl is True
    assert build_parser().parse_args(["lsp"]).jsonl is False


def test_bad_model_is_one_error_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*SCRIBE, "lsp", "--model", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        env=server_env(tmp_path),
        timeout=WAIT_S,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert proc.stderr.startswith("scribe: error: model ") and "Traceback" not in proc.stderr
