"""The `ollama` Python client against the server's /api: tags, show, generate (with suffix and
raw), chat, version, ps, keep_alive; NDJSON streaming unless "stream": false."""

from __future__ import annotations

import json

import ollama
import pytest

from tests.plugins.http.live_server import LiveServer

PROMPT = "It was a bright cold day in April, and the"


@pytest.fixture(scope="module")
def client(live: LiveServer) -> ollama.Client:
    return ollama.Client(host=live.url)


def test_tags_version_and_show(client: ollama.Client, live: LiveServer) -> None:
    names = {model.model for model in client.list().models}
    assert {"tiny:latest", "fim:latest", "long:latest", "default:latest"} <= names
    assert client.list().models[0].details.family == "gpt2"
    assert live.get("/api/version").json()["version"]
    shown = client.show("fim")
    # The template advertises .Suffix only for a model whose card declares FIM.
    assert ".Suffix" in shown.template and "<|fim_prefix|>" in shown.template
    assert "insert" in shown.capabilities and shown.modelinfo["gpt2.context_length"] == 256
    assert ".Suffix" not in client.show("tiny:latest").template
    # The older "name" field is accepted too.
    older = live.post("/api/show", {"name": "fim"})
    assert older.status_code == 200 and older.json()["template"] == shown.template


def test_generate_streams_ndjson_unless_stream_false(
    client: ollama.Client, live: LiveServer
) -> None:
    options = {"num_predict": 6, "temperature": 0}
    parts = list(client.generate(model="tiny", prompt=PROMPT, options=options, stream=True))
    assert all(not part.done for part in parts[:-1]) and parts[-1].done
    assert parts[-1].done_reason in ("stop", "length") and parts[-1].eval_count <= 6
    whole = client.generate(model="tiny", prompt=PROMPT, options=options, stream=False)
    assert whole.response == "".join(part.response for part in parts)
    assert whole.prompt_eval_count is not None and whole.context
    # On the wire: one object per line, no blank lines; streaming is the default.
    raw = live.post("/api/generate", {"model": "tiny", "prompt": PROMPT, "options": options})
    assert raw.headers["content-type"].startswith("application/x-ndjson")
    lines = raw.text.split("\n")
    assert lines[-1] == "" and all(line.strip() for line in lines[:-1])
    assert [json.loads(line)["done"] for line in lines[:-1]][-1] is True


def test_generate_with_suffix_fills_the_middle(client: ollama.Client) -> None:
    options = {"num_predict": 6, "temperature": 0}
    args = {"model": "fim", "prompt": "def add(a, b):\n    return", "options": options}
    plain = client.generate(**args, raw=True)
    fim = client.generate(**args, suffix="\n\nprint(add(1, 2))\n")
    assert fim.prompt_eval_count > plain.prompt_eval_count  # the suffix and markers were read


def test_chat_streaming_and_not(client: ollama.Client) -> None:
    messages = [{"role": "user", "content": "Write a line about the sea."}]
    options = {"num_predict": 8, "temperature": 0}
    answer = client.chat(model="tiny", messages=messages, options=options)
    assert answer.message.role == "assistant" and answer.done
    parts = list(client.chat(model="tiny", messages=messages, options=options, stream=True))
    assert "".join(p.message.content for p in parts) == answer.message.content
    long = [
        {"role": "user", "content": f"Turn {i}: the boats were coming home."} for i in range(40)
    ]
    assert client.chat(model="tiny", messages=long, options=options).done


def test_keep_alive_loads_and_unloads(client: ollama.Client) -> None:
    client.generate(model="fim", keep_alive="10m")  # no prompt: just load it
    loaded = {model.model: model for model in client.ps().models}
    assert "fim:latest" in loaded and loaded["fim:latest"].expires_at is not None
    client.generate(model="fim", prompt="x", options={"num_predict": 1}, keep_alive=0)
    assert "fim:latest" not in {model.model for model in client.ps().models}
    client.chat(model="fim", messages=[], keep_alive=-1)  # load, and keep for ever
    assert "fim:latest" in {model.model for model in client.ps().models}
    client.generate(model="fim", keep_alive="0s")
    assert "fim:latest" not in {model.model for model in client.ps().models}


def test_errors_are_ollama_errors(client: ollama.Client, live: LiveServer) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        client.generate(model="no-such-model", prompt="x")
    assert missing.value.status_code == 404 and "scribe models" in missing.value.error
    with pytest.raises(ollama.ResponseError) as bad:
        client.generate(model="tiny", prompt="x", keep_alive="for ever")
    assert bad.value.status_code == 400 and "keep_alive" in bad.value.error
    answer = live.post("/api/chat", {"model": "tiny", "messages": "hello"})
    assert answer.status_code == 400 and set(answer.json()) == {"error"}
