"""`scribe complete`'s output and input ends, in real subprocesses: a full disk on stdout is one
line and exit 1; a reader that went away ends it silently with SIGPIPE's status (141), as other
Unix filters; stdin that is not UTF-8 is refused with one line (not guessed at: a wrong guess
would feed the model mojibake and hide the problem)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.tui.cli_run import SCRIBE, one_error, scribe

GREEDY = ["--temperature", "0", "--max-tokens", "20"]


def complete_args(model: Path) -> list[str]:
    return [*SCRIBE, "complete", "--model", str(model), *GREEDY]


@pytest.mark.slow
def test_the_greedy_run_writes_something(tiny_model_dir: Path) -> None:
    """The runs below only test a failing write if there is something to write."""
    result = scribe("complete", "--model", str(tiny_model_dir), *GREEDY, stdin=b"Once upon")
    assert result.returncode == 0 and result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_on_stdout_is_one_line_and_exit_1(tiny_model_dir: Path) -> None:
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            complete_args(tiny_model_dir),
            input=b"Once upon",
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    err = result.stderr.decode()
    assert result.returncode == 1
    one_error(err, "cannot write to stdout", "No space left on device")
    assert "Exception ignored" not in err


@pytest.mark.slow
def test_stdout_closed_before_the_first_write_ends_silently_with_sigpipe_status(
    tiny_model_dir: Path,
) -> None:
    proc = subprocess.Popen(
        complete_args(tiny_model_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdout.close()  # the reader goes away before scribe has loaded its model
    proc.stdin.write(b"Once upon")
    proc.stdin.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert err == b""


@pytest.mark.slow
def test_head_c1_gets_one_byte_and_no_complaint(tiny_model_dir: Path) -> None:
    cmd = " ".join(complete_args(tiny_model_dir))
    result = subprocess.run(
        f"set -o pipefail; echo 'Once upon' | {cmd} --max-tokens 100 | head -c1",
        shell=True,
        capture_output=True,
        timeout=120,
        executable="/bin/bash",
    )
    assert len(result.stdout) == 1
    assert b"Traceback" not in result.stderr and b"Exception ignored" not in result.stderr


def test_no_stdout_at_all_is_one_line(tiny_model_dir: Path) -> None:
    cmd = " ".join(complete_args(tiny_model_dir))
    result = subprocess.run(
        f"echo 'Once upon' | {cmd} >&-",
        shell=True,
        capture_output=True,
        timeout=120,
        executable="/bin/bash",
    )
    assert result.returncode == 2
    one_error(result.stderr.decode(), "stdout is closed")


@pytest.mark.parametrize(
    ("stdin", "words"),
    [
        (b"caf\xe9 au lait", ["stdin is not valid UTF-8", "0xe9 at offset 3", "iconv"]),
        (b"\xff\xfe" + "hi".encode("utf-16-le"), ["stdin is UTF-16, not UTF-8", "iconv"]),
        (b"ok \xc3", ["not valid UTF-8", "offset 3"]),  # cut inside a character
    ],
)
def test_stdin_that_is_not_utf8_is_refused_in_one_line(
    tiny_model_dir: Path, stdin: bytes, words: list[str]
) -> None:
    result = scribe("complete", "--model", str(tiny_model_dir), stdin=stdin)
    assert result.returncode == 2 and result.stdout == b""
    one_error(result.stderr.decode(), *words)
