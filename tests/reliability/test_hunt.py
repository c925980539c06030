"""Found by playing a hostile user: a `~user` that does not exist, a NUL byte or a pipe, a device
or a huge file given as a path, and stdin or stdout closed at start. Each is one error line (a
note inside chat), never a traceback or a hang, and the conversation is still saved."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from scribe.engine import paths
from tests.tui.cli_run import SCRIBE, Cli, one_error, scribe

NO_USER = "~no-such-user-scribe-hunt"
GREEDY = ["--temperature", "0", "--max-tokens", "3"]


@pytest.mark.parametrize(
    ("args", "code", "where"),
    [
        (["complete", "--model", f"{NO_USER}/m"], 2, "--model"),
        (["chat", "--plain", "--model", f"{NO_USER}/m"], 2, "--model"),
        (["finetune", "notes.txt", "--out", "x", "--model", f"{NO_USER}/m"], 2, "--model"),
        (["export", "TINY", "--out", f"{NO_USER}/x.gguf"], 2, "--out"),
    ],
)
def test_an_unknown_home_in_a_flag_is_one_line(
    cli: Cli, tiny_model_dir: Path, args: list[str], code: int, where: str
) -> None:
    args = [str(tiny_model_dir) if a == "TINY" else a for a in args]
    got, out, err = cli(*args)
    assert got == code
    one_error(err, where, NO_USER, "full path")


def test_an_unknown_home_in_scribe_home_is_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRIBE_HOME", f"{NO_USER}/scribe")
    for args in (["models"], ["templates"], ["log"]):
        code, _, err = cli(*args)
        assert code == 2
        one_error(err, "SCRIBE_HOME", NO_USER)


def test_an_unknown_home_as_default_model_names_config_toml(cli: Cli) -> None:
    paths.config_dir().mkdir(parents=True)
    paths.config_file().write_text(f'default_model = "{NO_USER}/m"\n', encoding="utf-8")
    code, out, err = cli("complete")
    assert code == 1 and out == ""
    one_error(err, str(paths.config_file()), "default_model", NO_USER)


@pytest.mark.slow
def test_bad_paths_in_slash_commands_are_notes_and_the_chat_is_kept(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it to read would wait for a writer forever
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as file:
        file.truncate(17 * 1024 * 1024)  # sparse: costs no disk
    commands = {
        f"/export {NO_USER}/chat.md": "/export " + NO_USER,
        f"/read {NO_USER}/draft.txt": "/read " + NO_USER,
        f"/model {NO_USER}/m": "/model " + NO_USER,
        "/export /tmp/a\x00b.md": "/export: a path cannot contain a NUL byte",
        "/read /tmp/a\x00b.txt": "/read: a path cannot contain a NUL byte",
        f"/read {fifo}": "not a regular file",
        f"/read {loop}": "cannot read (Too many levels of symbolic links)",
        f"/read {huge}": "more than the 16777216",
    }
    lines = ["remember the lighthouse", *commands, "/quit"]
    result = scribe(
        "chat", "--plain", "--model", str(tiny_model_dir), *GREEDY,
        stdin="\n".join(lines).encode() + b"\n",
        timeout=120,
    )  # fmt: skip
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "Traceback" not in err
    notes = [line for line in err.splitlines() if line.startswith("scribe: ")]
    for words in commands.values():
        assert sum(words in note for note in notes) == 1, (words, err)
    # The turn before all that is saved.
    log = scribe("log", "-q", "lighthouse")
    assert log.returncode == 0 and b"lighthouse" in log.stdout


def run_shell(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, shell=True, capture_output=True, timeout=120, executable="/bin/bash"
    )


@pytest.mark.parametrize("args", [["log"], ["models"], ["templates"], ["log", "-q", "x"]])
def test_stdout_closed_is_one_line_for_every_command(args: list[str]) -> None:
    result = run_shell(" ".join([*SCRIBE, *args]) + " >&-")
    assert result.returncode == 2
    one_error(result.stderr.decode(), "stdout is closed")


@pytest.mark.slow
def test_stdin_closed_reads_as_empty(tiny_model_dir: Path) -> None:
    cmd = " ".join([*SCRIBE, "complete", "--model", str(tiny_model_dir), *GREEDY])
    result = run_shell(cmd + " <&-")
    assert result.returncode == 2 and result.stdout == b""
    one_error(result.stderr.decode(), "stdin is empty")
    # A chat with nothing to read ends as one fed from /dev/null does.
    cmd = " ".join([*SCRIBE, "chat", "--plain", "--model", str(tiny_model_dir), *GREEDY])
    result = run_shell(cmd + " <&-")
    assert result.returncode == 0 and b"Traceback" not in result.stderr


def test_models_lists_an_adapter_whose_base_is_an_unknown_home(cli: Cli) -> None:
    folder = paths.models_dir() / "odd-adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(
        f'{{"base_model_name_or_path": "{NO_USER}/base", "peft_type": "LORA"}}', encoding="utf-8"
    )
    code, out, err = cli("models")
    assert code == 0 and "Traceback" not in err
    assert "odd-adapter" in out
