"""The real `scribe chat` in a real terminal (tmux, 100x30) against a tiny real model: a typed
message streams a reply, Esc stops a long reply, Ctrl+Q quits; the conversation is then in SQLite,
`scribe log` lists it, `scribe log -q` finds it and `scribe chat --continue` shows it again.

The tiny model writes its 32-token replies in a blink, too fast to press Esc during one. For the
"long reply", the first session runs the same CLI through a launcher that holds the second reply
after its first piece until Esc is pressed (deterministic, no timing). The second session is the
plain, unmodified `scribe chat --continue`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scribe.engine.chat.conversations import ConversationStore
from scribe.tui.cli import main

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
    pytest.mark.slow,
]

LONG_REPLY_LAUNCHER = """
import sys
from scribe.engine.chat import engine as chat_engine
from scribe.engine.runtime.stream import Stream

real_answer = chat_engine.ModelEngine.answer
calls = []


def answer(self, prompt, options, cancel=None):
    calls.append(prompt)
    real = real_answer(self, prompt, options, cancel)

    def deltas(out):
        for index, delta in enumerate(real):
            out.stats = real.stats
            yield delta
            if len(calls) == 2 and index == 0 and cancel is not None:
                cancel.wait(1800)  # a reply that goes on until Esc (the limit only ends a hang)
        out.stats = real.stats

    return Stream(deltas)


chat_engine.ModelEngine.answer = answer
from scribe.tui.cli import main

sys.exit(main(sys.argv[1:]))
"""


def scaled(seconds: float) -> float:
    """`seconds` stretched by how busy the machine is now (load per core, at least 1)."""
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:  # no load average here
        load = 1.0
    return seconds * max(1.0, load)


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket
        self.session = ""
        self.count = 0

    def __call__(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        return out.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        shell = " ".join(shlex.quote(c) for c in command) + "; echo EXIT=$?; sleep 600"
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        if self.session:
            self("kill-session", "-t", self.session)
        self.count += 1
        self.session = f"chat{self.count}"
        self("new-session", "-d", "-s", self.session, "-x", "100", "-y", "30", *env_args, shell)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.session)

    def wait(self, ready: Callable[[str], bool], what: str, limit: float = 300) -> str:
        """Poll the screen until `ready`: a condition, never a timing assertion. `limit` only
        catches a hang: it grows with the machine's load (a busy machine is slow, not broken),
        and a scribe that exited (EXIT= on the screen) fails at once instead."""
        start = time.monotonic()
        while True:
            screen = self.screen()
            if ready(screen):
                return screen
            if "EXIT=" in screen:
                raise AssertionError(f"scribe exited before {what}; screen:\n{screen}")
            if time.monotonic() - start > scaled(limit):
                raise AssertionError(f"never saw {what}; screen:\n{screen}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        self("send-keys", "-t", self.session, "-l", text)


def model_ready(screen: str) -> bool:
    return "template chat" in screen and "loading model" not in screen


def idle(screen: str) -> bool:
    return "template chat" in screen and "replying" not in screen


def test_chat_in_a_real_terminal(tiny_model_dir: Path, scribe_home: Path) -> None:
    tmux = Tmux(f"scribe-chat-test-{os.getpid()}")
    env = {
        "SCRIBE_HOME": str(scribe_home),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TERM": "xterm-256color",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    model = str(tiny_model_dir)
    try:
        # Session 1: type, stream a reply, then stop a long one with Esc, quit with Ctrl+Q.
        launcher = [sys.executable, "-c", LONG_REPLY_LAUNCHER]
        tmux.start([*launcher, "chat", "--model", model, "--temperature", "0"], env)
        tmux.wait(model_ready, "the model loaded")
        tmux.type("Hello there")
        tmux.keys("Enter")
        screen = tmux.wait(lambda s: "Assistant" in s and idle(s), "a finished reply")
        assert "You" in screen and "Hello there" in screen
        assert "tokens " in screen and "/128 (32)" in screen  # the meter: used/limit (reserve)
        tmux.type("Tell me a long story")
        tmux.keys("Enter")
        tmux.wait(lambda s: "writing… (Esc stops)" in s, "the long reply streaming")
        tmux.keys("Escape")
        screen = tmux.wait(lambda s: "■ stopped" in s and idle(s), "the reply marked stopped")
        tmux.keys("C-q")
        tmux.wait(lambda s: "EXIT=0" in s, "scribe chat exiting with status 0")

        store = ConversationStore()
        (record,) = store.list_conversations()
        thread = store.thread(record.id)
        assert [(m.role, m.status) for m in thread] == [
            ("user", "complete"),
            ("assistant", "complete"),
            ("user", "complete"),
            ("assistant", "stopped"),
        ]
        assert thread[0].content == "Hello there" and thread[2].content == "Tell me a long story"
        assert store.path == scribe_home / "data" / "conversations.db"
        stopped_text = thread[3].content

        # scribe log lists it, scribe log -q finds it (in-process: same files, no new Python).
        assert main(["log"]) == 0
        assert main(["log", "-q", "long story"]) == 0

        # Session 2: the real `scribe chat --continue` shows it again and carries on.
        tmux.start([sys.executable, "-m", "scribe.tui.cli", "chat", "--continue"], env)
        screen = tmux.wait(model_ready, "the continued conversation")
        assert "Tell me a long story" in screen and "■ stopped" in screen
        assert stopped_text.splitlines()[0][:20] in screen
        tmux.type("One more")
        tmux.keys("Enter")
        tmux.wait(lambda s: idle(s) and s.count("Assistant") >= 3, "the third reply")
        tmux.keys("C-q")
        tmux.wait(lambda s: "EXIT=0" in s, "scribe chat --continue exiting with status 0")
        assert len(store.thread(record.id)) == 6
        assert len(store.list_conversations()) == 1
    finally:
        tmux("kill-server")
