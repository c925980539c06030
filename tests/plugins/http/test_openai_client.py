"""The `openai` Python SDK against the server's /v1: models, completions and chat, streaming and
not, usage, stop as a string or a list, a conversation longer than the window, errors."""

from __future__ import annotations

import openai
import pytest

from tests.plugins.http.live_server import LiveServer

PROMPT = "It was a bright cold day in April, and the"


@pytest.fixture(scope="module")
def client(live: LiveServer) -> openai.OpenAI:
    # No key is set on the server: the SDK's required key is any string (llm sends a dummy one).
    return openai.OpenAI(base_url=live.url + "/v1", api_key="not-needed", max_retries=0)


def test_models_lists_what_scribe_models_lists(client: openai.OpenAI) -> None:
    names = {model.id for model in client.models.list()}
    assert {"tiny", "fim", "long", "default"} <= names
    assert client.models.retrieve("fim").id == "fim"


def test_completion_has_text_usage_and_a_finish_reason(client: openai.OpenAI) -> None:
    answer = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=5, temperature=0)
    choice = answer.choices[0]
    assert isinstance(choice.text, str)
    assert choice.finish_reason in ("stop", "length")
    usage = answer.usage
    assert usage is not None and usage.completion_tokens <= 5 and usage.prompt_tokens > 5
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # Greedy and the same prompt: the same text, and the prompt comes from the KV cache.
    again = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=5, temperature=0)
    assert again.choices[0].text == choice.text
    assert again.usage.prompt_tokens_details.cached_tokens > 0


def test_streamed_completion_with_include_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.completions.create(
            model="tiny",
            prompt=PROMPT,
            max_tokens=6,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert all(chunk.usage is None for chunk in chunks[:-1])
    text = "".join(chunk.choices[0].text for chunk in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "length"
    whole = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=6, temperature=0)
    assert text == whole.choices[0].text


def test_stop_as_a_string_and_as_a_list(client: openai.OpenAI) -> None:
    free = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=12, temperature=0)
    text = free.choices[0].text
    word = next((w for w in text.split() if len(w) > 1 and text.index(w) > 0), None)
    if word is None:
        pytest.skip(f"the random model wrote no word to stop at: {text!r}")
    for stop in (word, [word, "\u2603never"]):
        cut = client.completions.create(
            model="tiny", prompt=PROMPT, max_tokens=12, temperature=0, stop=stop
        )
        assert cut.choices[0].text == text[: text.index(word)]
        assert cut.choices[0].finish_reason == "stop"


def test_chat_streaming_and_not(client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Write a line about the sea."},
    ]
    answer = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=8, temperature=0
    )
    message = answer.choices[0].message
    assert message.role == "assistant" and isinstance(message.content, str)
    assert answer.usage.completion_tokens <= 8
    chunks = list(
        client.chat.completions.create(
            model="tiny", messages=messages, max_tokens=8, temperature=0, stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == message.content
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].usage is not None  # usage always: in the last chunk when not asked


def test_a_conversation_longer_than_the_window(client: openai.OpenAI) -> None:
    messages: list = [{"role": "system", "content": "A long talk."}]
    for turn in range(30):
        messages.append({"role": "user", "content": f"Turn {turn}: tell me about the boats."})
        messages.append({"role": "assistant", "content": "The boats were coming home."})
    messages.append({"role": "user", "content": [{"type": "text", "text": "And the sea?"}]})
    answer = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8)
    extra = answer.model_extra["scribe"]  # the fitting, as scribe chat does it
    assert extra["truncated"] is True and extra["turns_dropped"] > 20
    assert answer.usage.prompt_tokens + 8 <= 128  # the tiny model's window
    assert isinstance(answer.choices[0].message.content, str)


def test_fill_in_the_middle_through_suffix(client: openai.OpenAI) -> None:
    # The fim model's card declares FIM: the suffix changes what it writes; the tiny model has
    # none, so its suffix is left out and the answer is the prefix-only one.
    args = {"prompt": "def add(a, b):\n    return", "max_tokens": 6, "temperature": 0}
    plain = client.completions.create(model="fim", **args)
    fim = client.completions.create(model="fim", suffix="\n\nprint(add(1, 2))\n", **args)
    assert fim.model_extra["scribe"]["fim"] is True and plain.model_extra["scribe"]["fim"] is False
    assert fim.usage.prompt_tokens > plain.usage.prompt_tokens
    tiny = client.completions.create(model="tiny", suffix="\nprint(add(1, 2))\n", **args)
    assert tiny.model_extra["scribe"]["fim"] is False


def test_errors_are_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="no-such-model", prompt="x", max_tokens=1)
    assert "scribe models" in missing.value.message
    assert missing.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as bad:
        client.completions.create(model="tiny", prompt="x", max_tokens=1, temperature=-1)
    assert bad.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny", messages=[], max_tokens=1)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        )
