"""Issue 23, chat and storage: each failure through the real command (a child `scribe`), a real
SQLite file, a real full file system (a small tmpfs in a private mount namespace), a real
terminal (a pty) or the Textual app driven by a pilot."""

from __future__ import annotations

import ctypes
import os
import pty
import select
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scribe.engine import paths
from scribe.engine.chat.conversations import ConversationStore
from scribe.engine.chat.session import ChatSession, Settings
from scribe.tui.chat.app import ChatApp
from scribe.tui.chat.code_blocks import code_blocks
from scribe.tui.chat.screens.history import HistoryScreen
from tests.tui.chat_fakes import FakeEngine, FakeLoader
from tests.tui.cli_run import SCRIBE

ROOT = Path(__file__).parents[2]
FOOTER_SIZE = (80, 24)
FULL_SCREEN = b"\x1b[?1049h"  # a terminal app switching to the alternate screen


def run(
    args: list[str], stdin: str = "", env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [*SCRIBE, *args], input=stdin, capture_output=True, text=True, env=env, timeout=600, **kw
    )  # type: ignore[call-overload]


def no_traceback(out: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in out.stderr, out.stderr


# -- /export: never replaces without --force, written whole, owner-only --------------------------
@pytest.mark.slow
def test_export_keeps_an_existing_file_unless_forced_and_is_private(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "notes.md"
    mine.write_text("my own notes\n")
    fresh = tmp_path / "fresh.md"
    script = f"Hello there\n/export {mine}\n/export {fresh}\n"
    out = run(["chat", "--plain", "--model", str(tiny_model_dir), "--max-tokens", "4"], script)
    no_traceback(out)
    assert mine.read_text() == "my own notes\n"  # untouched
    assert f"/export: {mine} already exists; /export {mine} --force replaces it" in out.stderr
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert "## You" in fresh.read_text()
    out = run(["chat", "--plain", "--continue"], f"/export {mine} --force\n")
    no_traceback(out)
    assert "## You" in mine.read_text() and f"exported to {mine}" in out.stdout
    assert stat.S_IMODE(mine.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*part*"))  # nothing left beside it


def in_small_tmpfs(mount: Path, script: str, size: str = "2m") -> subprocess.CompletedProcess:
    """`script` (sh) run with a `size` tmpfs mounted on `mount`, in a private mount namespace:
    a real full disk, without root on the host."""
    mount.mkdir(parents=True, exist_ok=True)
    shell = f"mount -t tmpfs -o size={size},mode=0700 tmpfs {mount} && {script}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", shell], capture_output=True, text=True, env=env, timeout=600
    )


def can_mount_tmpfs(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = in_small_tmpfs(tmp_path / "probe", "true", "64k")
    return probe.returncode == 0


def fill(mount: Path) -> str:
    """Shell that fills `mount` to the last byte."""
    return f"(dd if=/dev/zero of={mount}/filler bs=4k 2>/dev/null || true)"


@pytest.mark.slow
def test_export_on_a_full_disk_leaves_the_old_file_whole(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    if not can_mount_tmpfs(tmp_path):
        pytest.skip("needs unshare and tmpfs mounts in a user namespace")
    disk = tmp_path / "disk"
    target = disk / "notes.md"
    scribe = " ".join(SCRIBE)
    long_turn = "word " * 20000  # about 100 KB of Markdown: more than the space left
    script = (
        f"echo 'my own notes' > {target} && {fill(disk)} && "
        f"printf '%s\\n/export {target} --force\\n' '{long_turn}' | {scribe} chat --plain "
        f"--model {tiny_model_dir} --max-tokens 2; echo RC=$?; cat {target}; ls -a {disk}"
    )
    out = in_small_tmpfs(disk, script)
    assert "Traceback" not in out.stderr, out.stderr
    assert f"/export: cannot write {target} (the disk is full; free some space)" in out.stderr
    assert "my own notes" in out.stdout  # the old file, whole
    assert ".notes.md.part" not in out.stdout  # the partial copy is gone


# -- the conversation database ------------------------------------------------------------------
RACER = """
import os, sys, time
from scribe.tui.cli import main
import scribe.engine.chat.conversations, scribe.engine.chat.session  # loaded before the start
go, ready = sys.argv[1], sys.argv[2]
open(os.path.join(ready, str(os.getpid())), "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
def test_several_scribes_opening_a_new_data_dir_at_once(tmp_path: Path) -> None:
    """Eight real processes open the same fresh SCRIBE_HOME the same millisecond, five times:
    each makes or finds the schema (no "table already exists", no "locked"), and says only that
    there is nothing to continue yet."""
    for round_ in range(5):
        home = tmp_path / f"home{round_}"
        go = tmp_path / f"go{round_}"
        ready = tmp_path / f"ready{round_}"
        ready.mkdir()
        env = {**os.environ, "SCRIBE_HOME": str(home)}
        children = [
            subprocess.Popen(
                [sys.executable, "-c", RACER, str(go), str(ready), "chat", "--plain", "--continue"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(8)
        ]
        try:
            while len(list(ready.iterdir())) < len(children):  # all loaded, waiting for `go`
                assert all(c.poll() is None for c in children), "a child ended early"
                time.sleep(0.01)
        finally:
            go.touch()  # never left waiting
        for child in children:
            _, err = child.communicate(timeout=600)
            assert child.returncode == 2, err
            assert err.startswith("scribe: error: no saved conversation to continue yet"), err
        store = ConversationStore(home / "data" / "conversations.db")
        assert store.schema_version == 2
        store.close()


@pytest.mark.slow
def test_a_full_disk_in_chat_says_disk_full(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The data dir (only it: the caches stay elsewhere) on a small tmpfs, filled between two
    chats: the second one's turn cannot be saved, and says the disk is full."""
    if not can_mount_tmpfs(tmp_path):
        pytest.skip("needs unshare and tmpfs mounts in a user namespace")
    home = tmp_path / "home"
    data = home / "data"
    scribe = " ".join(SCRIBE)
    chat = f"SCRIBE_HOME={home} {scribe} chat --plain --model {tiny_model_dir} --max-tokens 2"
    script = (
        f"echo 'First turn' | {chat} && {fill(data)} && "
        f"echo 'Second turn {'x' * 5000}' | {chat} --continue; echo RC=$?"
    )
    out = in_small_tmpfs(data, script, "1m")
    assert "Traceback" not in out.stderr, out.stderr
    assert "disk I/O error" not in out.stderr
    assert "disk full: cannot save to" in out.stderr, out.stderr
    assert "free some space" in out.stderr and "RC=1" in out.stdout


def _drop_permission_override() -> None:
    """In the child: root without CAP_DAC_OVERRIDE/READ_SEARCH obeys the mode bits."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_log_reads_a_read_only_data_dir(scribe_home: Path) -> None:
    store = ConversationStore()
    cid = store.create_conversation()
    store.add_message(cid, None, "user", "Describe a lighthouse at night")
    store.close()
    data = paths.data_dir()
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    data.chmod(0o500)
    try:
        preexec = _drop_permission_override if os.geteuid() == 0 else None
        for args in (["log"], ["log", "--md", str(cid)], ["log", "-q", "lighthouse"]):
            out = subprocess.run(
                [*SCRIBE, *args],
                capture_output=True,
                text=True,
                env=os.environ.copy(),
                preexec_fn=preexec,
                timeout=600,
            )
            assert out.returncode == 0, out.stderr
            assert "lighthouse" in out.stdout and out.stderr == ""
    finally:
        data.chmod(0o700)
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before  # nothing written


# -- models in chat -----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_mistyped_model_in_chat_keeps_the_old_one_and_suggests(tiny_model_dir: Path) -> None:
    shutil.copytree(tiny_model_dir, paths.models_dir() / "my-style")
    out = run(
        ["chat", "--plain", "--model", "my-style", "--max-tokens", "3"],
        "/model my-stlye\nHello there\n",
    )
    no_traceback(out)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stderr.splitlines() if "my-stlye" in x and "did not load" in x)
    assert "did you mean 'my-style'?" in line and "`scribe models`" in line
    assert "still using" in line and "--model" not in line
    store = ConversationStore()
    (record,) = store.list_conversations()
    assert [m.role for m in store.thread(record.id)] == ["user", "assistant"]  # it answered


@pytest.mark.slow
def test_default_is_a_model_name_for_chat() -> None:
    out = run(["chat", "--plain", "--model", "default", "--max-tokens", "2"], "/model default\n")
    no_traceback(out)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("ready") == 2 and "hub" not in out.stderr.lower()


# -- the terminal -------------------------------------------------------------------------------
@pytest.mark.slow
def test_term_dumb_falls_back_to_line_mode(tiny_model_dir: Path) -> None:
    """In a real terminal (a pty) that says TERM=dumb: one notice, the line-mode prompt, and no
    full-screen escape codes."""
    env = {**os.environ, "TERM": "dumb", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [*SCRIBE, "chat", "--model", str(tiny_model_dir)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    seen = b""
    try:
        seen = read_until(leader, b"> ", child)
        # Typed before the prompt sets its terminal mode, a line may be flushed: type it again
        # until scribe ends (a condition, not a wait of fixed length).
        deadline = time.monotonic() + 600
        while child.poll() is None and time.monotonic() < deadline:
            os.write(leader, b"/quit\r")
            seen += drain(leader)
        child.wait(timeout=60)
        seen += drain(leader)
    finally:
        if child.poll() is None:
            child.kill()
        os.close(leader)
    text = seen.decode(errors="replace")
    assert "TERM=dumb" in text and "using line mode (--plain)" in text, text
    assert FULL_SCREEN not in seen  # the full-screen app never started
    assert child.returncode == 0, text


def read_until(fd: int, wanted: bytes, child: subprocess.Popen) -> bytes:
    """Read the pty until `wanted` shows (a condition; the child ending fails at once)."""
    seen, deadline = b"", time.monotonic() + 600  # the deadline only ends a hang
    while wanted not in seen and FULL_SCREEN not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
        elif child.poll() is not None:
            break
    assert wanted in seen, seen.decode(errors="replace")
    return seen


def drain(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 0.5)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


# -- the Textual app ----------------------------------------------------------------------------
def make_app(replies: list[str] | None = None) -> tuple[ChatApp, FakeEngine, ChatSession]:
    engine = FakeEngine(replies or ["Hello there."])
    session = ChatSession(ConversationStore(), FakeLoader(engine), Settings())
    return ChatApp(session), engine, session


async def ready(app: ChatApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await app.workers.wait_for_complete()
    await pilot.pause()


def status(app: ChatApp) -> str:
    return str(app.query_one("#status").render())


@pytest.mark.anyio
async def test_a_failed_model_switch_keeps_the_old_model_in_the_status() -> None:
    app, _, _ = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        app.chat.prompt.text = "/model missing-model"
        await pilot.press("enter")
        await ready(app, pilot)
        assert "fake-model" in status(app) and "no model" not in status(app)
        error = app.notices[-1]
        assert error.startswith("model missing-model did not load")
        assert "still using fake-model" in error and "--model" not in error


@pytest.mark.anyio
async def test_a_rejected_command_puts_the_cursor_at_the_end() -> None:
    app, _, _ = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        app.chat.prompt.text = "/nosuch some words"
        await pilot.press("enter")
        await ready(app, pilot)
        prompt = app.chat.prompt
        assert prompt.text == "/nosuch some words"
        assert prompt.cursor_location == prompt.document.end
        await pilot.press("x")
        assert prompt.text == "/nosuch some wordsx"


@pytest.mark.anyio
async def test_ctrl_o_opens_the_history_while_a_reply_streams() -> None:
    app, engine, session = make_app(["one two three four five"])
    engine.hold_after = 1
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        app.chat.prompt.text = "first"
        await pilot.press("enter")
        await pilot.pause()
        assert app.chat.generating
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("escape")
        await pilot.pause()
        engine.release.set()
        await ready(app, pilot)
        assert session.thread[-1].status == "complete"


@pytest.mark.anyio
async def test_f4_copies_an_indented_code_block() -> None:
    reply = "Run these:\n\n    make test\n    make lint\n\nThen commit."
    app, _, _ = make_app([reply])
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app, pilot)
        app.chat.prompt.text = "how do I check?"
        await pilot.press("enter")
        await ready(app, pilot)
        await pilot.press("f4")
        assert app.clipboard == "make test\nmake lint\n"


def test_code_blocks_fenced_and_indented_in_order() -> None:
    text = "a\n\n```py\nx = 1\n```\n\n    y = 2\n\n        z = 3\n\nend\n~~~\nopen"
    assert code_blocks(text) == ["x = 1\n", "y = 2\n\n    z = 3\n", "open\n"]
    assert code_blocks("text\n    not code: no blank line before") == []


@pytest.mark.anyio
async def test_the_footer_keeps_history_and_new_at_80_columns() -> None:
    from textual.widgets._footer import FooterKey

    app, _, _ = make_app()
    async with app.run_test(size=FOOTER_SIZE) as pilot:
        await ready(app, pilot)
        wanted = {"history", "new", "app.quit", "regenerate"}
        for _ in range(200):  # a starved machine lays the footer out late: wait, not time it
            shown = {
                key.action: key.region
                for key in app.screen.query(FooterKey)
                if key.region.width and key.region.right <= FOOTER_SIZE[0]
            }
            if wanted <= set(shown):
                break
            await pilot.pause(0.05)
        assert wanted <= set(shown), shown


# -- the Vim plugin -------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("vim") is None, reason="needs vim")
def test_vim_with_filetype_detection_off_is_on_for_markdown(tmp_path: Path) -> None:
    """Only the README's line in the vimrc (no `filetype on`): a .md buffer still gets scribe."""
    vimrc = tmp_path / "vimrc"
    vimrc.write_text(
        f"set nocompatible\nset runtimepath+={ROOT / 'plugins' / 'editors' / 'vim'}\n"
        "let g:scribe_command = ['false']\n"
    )
    result = tmp_path / "result"
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n")
    probe = f"call writefile([&filetype, scribe#filetype(), scribe#enabled_here()], '{result}')"
    out = subprocess.run(
        ["vim", "-Nu", str(vimrc), "-i", "NONE", "-es", "-c", probe, "-c", "qa!", str(notes)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.exists(), out.stdout + out.stderr
    assert result.read_text().split("\n")[:3] == ["", "markdown", "1"]
