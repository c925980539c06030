"""The prompts the server builds, read directly: chat in the model's own ChatFormat and fitted
with a start that stays put (so the KV cache keeps hitting), llama.cpp's infill layout, and
/health's 503 while the server's model loads."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from scribe.engine.prompting.chat_format import ChatFormat
from scribe.engine.runtime.options import GenerationOptions
from scribe.plugins.servers.completion_prompt import FimFormat
from scribe.plugins.servers.http import prompts
from scribe.plugins.servers.http.models_pool import ModelPool


def entry(models: Path, name: str, chat: dict | None = None) -> Any:
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.models import load

    loaded = load(str(models / name))
    generator = Generator(loaded)
    card = {"chat": chat} if chat else loaded.card
    return SimpleNamespace(
        generator=generator,
        windows={},
        fim=FimFormat.from_card(loaded.card, generator.encode),
        chat_format=ChatFormat.for_model(card),
    )


@pytest.fixture(scope="module")
def models(http_home: Path) -> Path:
    return http_home / "data" / "models"


def test_chat_uses_the_models_own_format_and_keeps_its_start(models: Path) -> None:
    own = {
        "system": "",
        "user": "\n### Human: $message",
        "assistant": "\n### Bot: $message",
        "reply": "\n### Bot:",
    }
    tiny = entry(models, "tiny", chat=own)
    talk = [("system", "Be kind.")]
    for turn in range(12):
        talk += [("user", f"Question {turn} about boats?"), ("assistant", "Boats float.")]
    plan = prompts.chat_plan(tiny, [*talk, ("user", "And ships?")], {"max_new_tokens": 16}, ["END"])
    assert plan.prompt.startswith("Be kind.") and plan.prompt.endswith(
        "\n### Human: And ships?\n### Bot:"
    )
    assert "\n### Human:" in plan.options.stop and "END" in plan.options.stop
    assert plan.info["truncated"] and plan.info["turns_dropped"] > 0
    assert plan.info["prompt_tokens"] + plan.options.max_new_tokens <= 128
    # The next turns: once the start had to move, it moved far enough to leave room, and then it
    # stays put while the rest fits: the old prompt is a prefix of the new one, and the engine
    # reuses its KV cache (a 1024-token window).
    long = entry(models, "long", chat=own)
    talk = talk * 8
    plans = []
    for turn in range(3):
        talk += [("user", f"And ships {turn}?")]
        plans.append(prompts.chat_plan(long, talk, {"max_new_tokens": 16}, []))
        talk += [("assistant", "Ships too.")]
    assert plans[0].info["truncated"]
    assert plans[2].info["turns_dropped"] == plans[1].info["turns_dropped"]
    assert plans[2].prompt.startswith(plans[1].prompt)
    # A model without a chat entry in its card is asked in the chat template's frames.
    plain = prompts.chat_plan(entry(models, "tiny"), [("user", "Hello")], {}, [])
    assert plain.prompt.endswith("\n\nWriter: Hello\n\nAssistant:")


def test_infill_layout_follows_llama_cpp(models: Path) -> None:
    fim = entry(models, "fim")
    marks = fim.fim
    options = GenerationOptions()
    plan = prompts.infill_plan(
        fim,
        "def add(a, b):\n",
        "\nprint(add(1, 2))\n",
        "    return",
        ["import math\n"],
        options,
        16,
        "slot",
    )
    text = fim.generator.decode(plan.prompt)
    # [extra] PREFIX prefix + typed line SUFFIX suffix MIDDLE
    assert text == (
        f"{prompts.SNIPPET}import math\n{marks.prefix}def add(a, b):\n    return"
        f"{marks.suffix}\nprint(add(1, 2))\n{marks.middle}"
    )
    assert plan.options.max_new_tokens == 16 and plan.info["fim"] is True
    # Without FIM in the card: the text before the cursor only.
    tiny = entry(models, "tiny")
    plan = prompts.infill_plan(tiny, "It was a bright\n", "cold day", "cold", [], options, 8, "s")
    assert tiny.generator.decode(plan.prompt) == "It was a bright\ncold"
    limit = prompts.infill_limit(n_indent=4, t_max_predict_ms=0)
    assert limit("x = 1\n    y = 2\nz = 3", 0.0) == len("x = 1\n    y = 2")


def test_health_is_503_while_the_model_loads(make_server, monkeypatch) -> None:
    release = threading.Event()
    original = ModelPool._load_blocking

    def slow(self: ModelPool, *args: Any) -> Any:
        release.wait(60)
        return original(self, *args)

    monkeypatch.setattr(ModelPool, "_load_blocking", slow)
    live = make_server(wait=False)
    loading = live.get("/health")
    assert loading.status_code == 503
    assert loading.json() == {
        "error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}
    }
    assert live.get("/v1/models").status_code == 200  # the rest of the server answers meanwhile
    release.set()
    live.wait_for(lambda: live.get("/health").status_code == 200, "the model to load")
