"""simonw's `llm` CLI against the server, configured as its README says: an entry in
extra-openai-models.yaml (in a temporary LLM_USER_PATH), with no key (llm then sends a dummy
one, which the server accepts when it has none set)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.http.live_server import LiveServer

pytestmark = pytest.mark.slow

LLM = Path(sys.executable).parent / "llm"


@pytest.fixture(scope="module")
def llm_env(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    user = tmp_path_factory.mktemp("llm-user")
    (user / "extra-openai-models.yaml").write_text(
        f"""- model_id: scribe-chat
  model_name: tiny
  api_base: "{live.url}/v1"
- model_id: scribe-complete
  model_name: tiny
  api_base: "{live.url}/v1"
  completion: true
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    return {**env, "LLM_USER_PATH": str(user)}


def llm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LLM), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_llm_chat_and_completion_models(live: LiveServer, llm_env: dict[str, str]) -> None:
    # The chat model streams (llm's default), the completion model is asked --no-stream.
    for model, stream in (("scribe-chat", []), ("scribe-complete", ["--no-stream"])):
        before = live.status()["models"]["tiny"]["last"]
        done = llm(
            llm_env,
            "-m",
            model,
            "-o",
            "max_tokens",
            "6",
            "-o",
            "temperature",
            "0",
            *stream,
            "It was a bright cold day",
        )
        assert done.returncode == 0 and "Error" not in done.stderr, done.stderr
        last = live.status()["models"]["tiny"]["last"]
        assert last != before and last["new_tokens"] <= 6  # it reached the model
        # llm prints the text it got back (a random model's; maybe blank).
        assert done.stdout.endswith("\n")
