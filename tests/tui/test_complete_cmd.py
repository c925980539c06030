"""`scribe complete` as a Unix filter: real subprocesses, real pipes and signals."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from scribe.engine.prompting.extractive import sentences
from tests.tui.cli_run import SCRIBE, scribe

pytestmark = pytest.mark.slow


def greedy_reference(model_dir: Path, prompt: str, n: int) -> str:
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = torch.tensor([tok.encode(prompt)])
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n
    )
    new = out[0, ids.shape[1] :].tolist()
    if tok.eos_token_id in new:
        new = new[: new.index(tok.eos_token_id)]
    return tok.decode(new)


def test_prints_exactly_what_greedy_generate_decodes(gpt2_vocab_model_dir: Path) -> None:
    result = scribe(
        "complete",
        "--model",
        str(gpt2_vocab_model_dir),
        "--temperature",
        "0",
        "--dry-multiplier",
        "0",  # transformers has no loop guard
        "--max-tokens",
        "40",
        stdin=b"The quick brown fox",
    )
    assert result.returncode == 0, result.stderr
    expected = greedy_reference(gpt2_vocab_model_dir, "The quick brown fox", 40)
    assert result.stdout.decode() == expected


def test_template_and_params_and_stop(gpt2_vocab_model_dir: Path) -> None:
    rewrite = ["complete", "--model", str(gpt2_vocab_model_dir), "-t", "rewrite"]
    rewrite += ["-p", "style", "formal", "--temperature", "0", "--max-tokens", "30"]
    plain = scribe(*rewrite, "--stop", "\n\n", stdin=b"the cat sat")
    assert plain.returncode == 0, plain.stderr
    out = plain.stdout.decode()
    stop = out[3:6]
    again = scribe(*rewrite, "--stop", stop, stdin=b"the cat sat")
    assert again.stdout.decode() == out[: out.index(stop)]


def test_fix_grammar_never_prints_worse_than_the_proofread_text(gpt2_vocab_model_dir: Path) -> None:
    """A random model's answer is noise: the check gives way to the rule-proofread text."""
    noisy = b"i definately left my umbrella on the the bus."
    run = scribe("complete", "--model", str(gpt2_vocab_model_dir), "-t", "fix-grammar", stdin=noisy)
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode() == "I definitely left my umbrella on the bus."


@pytest.mark.parametrize(
    ("stdin", "args", "words"),
    [
        (b"", [], "empty"),
        (b"abc\x00\x01\x02", [], "NUL byte"),
        (b"abc \xff\xfe", [], "offset 4"),
        (b"hello", ["-t", "no-such-template"], "no template named"),
        (b"hello", ["-p", "style", "x"], "-t"),
        (b"hello", ["--temperature", "-1"], "temperature"),
        (b"hello", ["--model", "/no/such/dir"], "not found"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(
    tiny_model_dir: Path, stdin: bytes, args: list[str], words: str
) -> None:
    model = [] if "--model" in args else ["--model", str(tiny_model_dir)]
    result = scribe("complete", *model, *args, stdin=stdin)
    err = result.stderr.decode()
    assert result.returncode != 0
    assert words in err
    assert err.count("\n") == 1 and err.startswith("scribe: error: ")
    assert "Traceback" not in err and result.stdout == b""


def test_a_megabyte_of_stdin_keeps_its_tail(tiny_model_dir: Path) -> None:
    draft = ("The quick brown fox jumps over the lazy dog. " * 23000).encode()
    assert len(draft) > 1_000_000
    result = scribe("complete", "--model", str(tiny_model_dir), "--max-tokens", "5", stdin=draft)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""


def test_broken_pipe_ends_quietly(gpt2_vocab_model_dir: Path) -> None:
    cmd = " ".join(SCRIBE) + f" complete --model {gpt2_vocab_model_dir} --max-tokens 500"
    result = subprocess.run(
        f"echo 'Once upon a time' | {cmd} | head -c 10",
        shell=True,
        capture_output=True,
        timeout=120,
        executable="/bin/bash",
    )
    assert len(result.stdout) == 10
    assert result.stderr == b""


def test_ctrl_c_exits_130_without_a_traceback(gpt2_vocab_model_dir: Path) -> None:
    proc = subprocess.Popen(
        [*SCRIBE, "complete", "--model", str(gpt2_vocab_model_dir), "--max-tokens", "1000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(b"Once upon a time")
    proc.stdin.close()
    assert proc.stdout.read(1)  # it is streaming now
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert proc.stderr and b"Traceback" not in proc.stderr.read()


def test_a_plain_gpt2_starts_without_importing_transformers(tiny_model_dir: Path) -> None:
    """A plain GPT-2 folder is read with safetensors and tokenizers: transformers' import alone
    would cost seconds of every `scribe complete`. bf16 runs on torch (at fp32 this small model
    runs on numpy and imports neither: tests/engine/test_numpy_backend.py)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    args = ["--model", str(tiny_model_dir), "--precision", "bf16", "--max-tokens", "3"]
    done = subprocess.run(
        [*SCRIBE, "complete", *args],
        input=b"Once upon a time",
        capture_output=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0 and done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines()}
    assert "scribe.engine.runtime.gpt2.checkpoint" in imported and "torch" in imported
    assert not {name for name in imported if name.startswith("transformers")}


def test_summarize_never_prints_noise(gpt2_vocab_model_dir: Path) -> None:
    """A random model's answer is noise: the check gives way to the text's own sentences."""
    text = (
        "The museum will open a new wing in May. The wing holds the museum's collection of "
        "maps, which has grown for forty years. Tickets to the new wing are free for children. "
        "It rained on Tuesday. The museum says the maps will travel to other cities next year."
    )
    run = scribe(
        "complete", "--model", str(gpt2_vocab_model_dir), "-t", "summarize", stdin=text.encode()
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout.decode()
    assert sentences(out) and all(sentence in text for sentence in sentences(out))
    assert "museum" in out and "rained" not in out and len(out) < len(text)
