"""`scribe serve --http` as a user starts it: a real process on 127.0.0.1 with a free port, its
one-line start message, a private log without the document's text, and a clean Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.plugins.http.live_server import WAIT_S

pytestmark = pytest.mark.slow

SECRET = "the launch code is 0000"


def test_the_command_serves_and_stops(http_home: Path) -> None:
    env = {
        **os.environ,
        "SCRIBE_HOME": str(http_home),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SCRIBE_API_KEY", None)
    command = [
        sys.executable,
        "-m",
        "scribe.tui.cli",
        "serve",
        "--http",
        "--model",
        "tiny",
        "--port",
        "0",
    ]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stderr.readline()
        match = re.search(r"serving tiny on (http://127\.0\.0\.1:\d+) ", line)
        assert match, line
        url = match.group(1)
        body = json.dumps({"prompt": SECRET, "max_tokens": 2}).encode()
        request = urllib.request.Request(
            url + "/v1/completions", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=WAIT_S) as answer:
            assert json.load(answer)["object"] == "text_completion"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err  # stopped by Ctrl-C, as a Unix command reports it
    assert out == ""  # stdout stays free
    log = http_home / "cache" / "http.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    assert "POST /v1/completions 200" in text and SECRET not in text
