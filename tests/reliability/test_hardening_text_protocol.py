"""Issue 23, group 3: text, locale and protocol input, through the real commands and servers.

A marker typed by the user (`<|fim_middle|>`, `<|endoftext|>`) is text in every door; all I/O is
UTF-8 whatever the locale; hostile protocol input gets an error reply and the server goes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scribe.engine.chat.conversations import ConversationStore
from tests import factory
from tests.plugins.lsp_harness import SCRIBE, WAIT_S, RawClient, server_env
from tests.tui.cli_run import one_error

pytestmark = pytest.mark.slow

INJECTED = "Dear reader <|fim_middle|> the end <|endoftext|> and <|fim_prefix|>more"


@pytest.fixture(scope="module")
def fim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return factory.fim_model(tmp_path_factory.mktemp("fim-model"))


def plain_ids(model: Path, text: str) -> list[int]:
    """`text` as plain text, by transformers (written apart from scribe's encoder)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    return list(tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])


def control_ids(model: Path) -> dict[str, int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    return {m: tok.convert_tokens_to_ids(m) for m in ("<|endoftext|>", "<|fim_middle|>")}


def run(args: list[Any], stdin: bytes = b"", env: dict[str, str] | None = None):
    return subprocess.run(
        [*SCRIBE, *args],
        input=stdin,
        capture_output=True,
        timeout=WAIT_S,
        env=env or os.environ.copy(),
    )


# -- document text is data -------------------------------------------------------------------


def test_the_engine_encodes_user_text_as_text_and_frame_markers_as_control(fim_dir: Path) -> None:
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.models import load
    from scribe.engine.runtime.text_tokens import frame

    generator = Generator(load(str(fim_dir)))
    expected = plain_ids(fim_dir, INJECTED)
    controls = control_ids(fim_dir)
    assert generator.encode(INJECTED) == expected
    assert not set(expected) & set(controls.values())
    framed = frame("<|fim_middle|>") + INJECTED + frame("<|endoftext|>")
    assert generator.encode(framed) == [
        controls["<|fim_middle|>"],
        *expected,
        controls["<|endoftext|>"],
    ]


def reference(model: Path, ids: list[int], max_tokens: int) -> str:
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.models import load
    from scribe.engine.runtime.options import GenerationOptions

    generator = Generator(load(str(model)))
    options = GenerationOptions(temperature=0, repetition_penalty=1.0, max_new_tokens=max_tokens)
    return generator.stream(ids, options).text()


def test_complete_reads_markers_in_stdin_as_text(fim_dir: Path) -> None:
    args = ["complete", "--model", fim_dir, "--temperature", "0", "--max-tokens", "12"]
    out = run(args, INJECTED.encode())
    assert out.returncode == 0, out.stderr.decode()
    got = out.stdout.decode()
    assert got == reference(fim_dir, plain_ids(fim_dir, INJECTED), 12)


def test_complete_template_values_are_text_and_its_frame_markers_control(
    fim_dir: Path, scribe_home: Path
) -> None:
    templates = scribe_home / "config" / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "marked.toml").write_text('prompt = "<|endoftext|>$input"\n', encoding="utf-8")
    args = ["complete", "--model", fim_dir, "-t", "marked", "--temperature", "0"]
    out = run([*args, "--max-tokens", "12"], INJECTED.encode())
    assert out.returncode == 0, out.stderr.decode()
    eos = control_ids(fim_dir)["<|endoftext|>"]
    assert out.stdout.decode() == reference(fim_dir, [eos, *plain_ids(fim_dir, INJECTED)], 12)


def test_chat_window_markers_in_messages_are_text(fim_dir: Path) -> None:
    from scribe.engine.chat.engine import ModelEngine
    from scribe.engine.prompting.chat_format import ChatFormat
    from scribe.engine.prompting.chat_window import Exchange, build_window
    from scribe.engine.runtime.models import load

    engine = ModelEngine(load(str(fim_dir)), None)
    fmt = ChatFormat(user="<|endoftext|>User: $message", reply="\n\nAssistant:")
    window = build_window(
        fmt,
        [Exchange(INJECTED, "fine <|endoftext|>", (1, 2))],
        INJECTED,
        n_positions=engine.n_positions,
        reserve=16,
        encode=engine.encode,
        decode=engine.decode,
        system="be <|fim_middle|> brief",
    )
    ids = engine.encode(window.prompt)
    controls = control_ids(fim_dir)
    assert ids.count(controls["<|endoftext|>"]) == 2  # the two user frames', no message's
    assert controls["<|fim_middle|>"] not in ids
    assert window.used == len(ids)


def lsp_client(model: Path, home: Path) -> RawClient:
    client = RawClient([*SCRIBE, "lsp", "--model", str(model)], server_env(home))
    reply = client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    assert "capabilities" in reply["result"]
    client.notify("initialized", {})
    return client


def inline(client: RawClient, uri: str, text: str) -> dict[str, Any]:
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "markdown", "version": 1, "text": text}},
    )
    lines = text.split("\n")
    params = {
        "textDocument": {"uri": uri},
        "position": {"line": len(lines) - 1, "character": len(lines[-1])},
        "context": {"triggerKind": 1},
    }
    return client.request("textDocument/inlineCompletion", params)


def test_lsp_document_markers_are_text(fim_dir: Path, tmp_path: Path) -> None:
    client = lsp_client(fim_dir, tmp_path)
    try:
        reply = inline(client, "file:///tmp/a.md", INJECTED)
        assert "result" in reply, reply
        last = client.request("scribe/status", None)["result"]["last"]
        # No text after the cursor: the prompt is the document's text, every marker as text.
        assert last["prompt_tokens"] == len(plain_ids(fim_dir, INJECTED))
    finally:
        client.proc.kill()
        client.proc.wait()


def test_http_prompt_markers_are_text(fim_dir: Path, scribe_home: Path) -> None:
    from tests.plugins.http.live_server import LiveServer

    factory.fim_model(scribe_home / "data" / "models" / "fim")  # the same seed: fim_dir's twin
    server = LiveServer(model="fim")
    try:
        body = {"model": "fim", "prompt": INJECTED, "max_tokens": 2, "temperature": 0}
        answer = server.post("/v1/completions", body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["usage"]["prompt_tokens"] == len(plain_ids(fim_dir, INJECTED))
    finally:
        server.close()


# -- templates ---------------------------------------------------------------------------------


def test_a_template_without_input_refuses_stdin(tiny_model_dir: Path, scribe_home: Path) -> None:
    templates = scribe_home / "config" / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "haiku.toml").write_text('prompt = "A haiku about $topic:"\n', encoding="utf-8")
    out = run(["complete", "--model", tiny_model_dir, "-t", "haiku", "-p", "topic", "rain"], b"x")
    assert out.returncode == 1
    one_error(out.stderr.decode(), "template 'haiku' has no $input", "add $input")


# -- locale --------------------------------------------------------------------------------------

LATIN1_LOCALES = [
    {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"},
    {"PYTHONIOENCODING": "latin-1"},  # what a Latin-1 LANG gives, on any machine
]


def locale_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = server_env(home)
    for key in ("PYTHONIOENCODING", "PYTHONUTF8", "LC_ALL", "LC_CTYPE", "LANG"):
        env.pop(key, None)
    env.update(extra)
    return env


@pytest.mark.parametrize("extra", LATIN1_LOCALES)
def test_log_prints_utf8_under_any_locale(scribe_home: Path, extra: dict[str, str]) -> None:
    store = ConversationStore()
    cid = store.create_conversation(model="café-models/naïve-model-with-a-long-name")
    user = store.add_message(cid, None, "user", "Un café — “s’il vous plaît” 🙂")
    store.add_message(cid, user, "assistant", "Voilà, ça marche.")
    store.close()
    env = locale_env(scribe_home, extra)
    listing = run(["log"], env=env)
    assert listing.returncode == 0, listing.stderr.decode()
    assert "…" in listing.stdout.decode("utf-8")
    markdown = run(["log", "--md", str(cid)], env=env)
    assert markdown.returncode == 0, markdown.stderr.decode()
    assert "Voilà, ça marche." in markdown.stdout.decode("utf-8")
    found = run(["log", "-q", "café"], env=env)
    assert found.returncode == 0 and "Traceback" not in found.stderr.decode()


@pytest.mark.parametrize("extra", LATIN1_LOCALES)
def test_complete_and_plain_chat_write_utf8_under_any_locale(
    tiny_model_dir: Path, scribe_home: Path, extra: dict[str, str]
) -> None:
    env = locale_env(scribe_home, extra)
    # A seed at which the tiny model writes characters outside ASCII (it learned some).
    args = ["--model", tiny_model_dir, "--max-tokens", "60", "--seed", "3", "--temperature", "2"]
    out = run(["complete", *args], "Über café naïve – “quotes”".encode(), env=env)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode("utf-8")
    assert text and "Traceback" not in out.stderr.decode()
    chat = run(["chat", "--plain", *args], "Un café, s’il vous plaît 🙂\n".encode(), env=env)
    assert chat.returncode == 0, chat.stderr.decode()
    assert "Traceback" not in chat.stderr.decode()
    (record,) = ConversationStore().list_conversations()
    thread = ConversationStore().thread(record.id)
    assert thread[0].content == "Un café, s’il vous plaît 🙂"
    assert thread[1].content and thread[1].content in chat.stdout.decode("utf-8")


def test_a_non_utf8_param_value_is_one_line(tiny_model_dir: Path) -> None:
    args = ["complete", "--model", str(tiny_model_dir), "-t", "rewrite", "-p", "style"]
    out = subprocess.run(
        [*SCRIBE, *args, b"caf\xe9"], input=b"x", capture_output=True, timeout=WAIT_S
    )
    assert out.returncode == 2
    one_error(out.stderr.decode(), "-p/--param", "not valid UTF-8", "0xe9")


# -- complete: a whitespace answer, a huge input ---------------------------------------------


def test_a_one_token_blank_answer_is_an_answer(tiny_model_dir: Path) -> None:
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.models import load
    from scribe.engine.runtime.options import GenerationOptions

    generator = Generator(load(str(tiny_model_dir)))
    options = GenerationOptions(temperature=0, repetition_penalty=1.0, max_new_tokens=1)
    words = factory.ENGLISH.split()

    def answer(prompt: str) -> str:  # as `scribe complete` asks: trailing blanks healed
        return generator.stream(prompt, options, heal=True).text()

    # A random model rarely writes a blank token: look through runs of the text for one.
    runs = (
        " ".join(words[i : n + 1]) + end
        for i in range(40)
        for n in range(i, min(len(words), i + 30))
        for end in ("", "\n")
    )
    prompt = next(p for p in runs if answer(p).isspace())
    args = ["--model", tiny_model_dir, "--max-tokens", "1", "--temperature", "0"]
    out = run(["complete", *args], prompt.encode())
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().isspace()


def peak_rss_kb(args: list[Any], stdin_path: Path) -> int:
    """The command's peak resident memory, measured by a parent of its own."""
    code = (
        "import resource, subprocess, sys\n"
        f"with open({str(stdin_path)!r}, 'rb') as f:\n"
        f"    p = subprocess.run({[*SCRIBE, *map(str, args)]!r}, stdin=f, capture_output=True)\n"
        "assert p.returncode == 0, p.stderr.decode()\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=WAIT_S)
    assert out.returncode == 0, out.stderr.decode()
    return int(out.stdout)


def test_complete_reads_a_huge_input_bounded(tiny_model_dir: Path, tmp_path: Path) -> None:
    small, huge = tmp_path / "small.txt", tmp_path / "huge.txt"
    small.write_text(factory.ENGLISH, encoding="utf-8")
    with huge.open("w", encoding="utf-8") as file:
        for _ in range(96 * 1024 * 1024 // len(factory.ENGLISH.encode())):
            file.write(factory.ENGLISH)
    args = ["complete", "--model", tiny_model_dir, "--max-tokens", "4"]
    grew = peak_rss_kb(args, huge) - peak_rss_kb(args, small)
    assert grew < 40 * 1024, f"reading 96 MB of stdin took {grew} KB more memory"


# -- the JSONL bridge ----------------------------------------------------------------------------

GOOD = {"prefix": "It was a bright cold day in April, and the", "max_tokens": 4}


def jsonl(model: Path, home: Path, lines: list[bytes]) -> list[dict[str, Any]]:
    proc = run(["lsp", "--jsonl", "--model", model], b"\n".join(lines) + b"\n", server_env(home))
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    return [json.loads(line) for line in proc.stdout.split(b"\n") if line]


def test_jsonl_requests_without_a_document_are_all_answered(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    lines = [json.dumps({"id": n, **GOOD}).encode() for n in range(6)]
    replies = jsonl(tiny_model_dir, tmp_path, lines)
    assert sorted(r["id"] for r in replies) == list(range(6))
    assert all("text" in r for r in replies), replies


def test_jsonl_only_a_newer_request_for_the_same_document_cancels(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    lines = [
        json.dumps({"id": "a1", "document": "a", **GOOD, "max_tokens": 64}).encode(),
        json.dumps({"id": "b1", "document": "b", **GOOD}).encode(),
        json.dumps({"id": "a2", "document": "a", **GOOD}).encode(),
    ]
    replies = {r["id"]: r for r in jsonl(tiny_model_dir, tmp_path, lines)}
    assert "text" in replies["b1"] and "text" in replies["a2"], replies
    assert replies["a1"].get("error", "").startswith("cancelled: a newer request") or (
        "text" in replies["a1"]  # it may have finished before a2 came
    )


def test_jsonl_surrogate_gets_an_error_reply_and_the_bridge_goes_on(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    lines = [
        json.dumps({"id": "sur", **GOOD, "prefix": "ab\ud800cd"}).encode(),
        json.dumps({"id": "next", **GOOD}).encode(),
    ]
    replies = {r["id"]: r for r in jsonl(tiny_model_dir, tmp_path, lines)}
    assert replies["sur"]["error"].startswith('"prefix" holds a lone surrogate (U+D800')
    assert "text" in replies["next"]


def test_jsonl_line_separators_inside_strings_are_text(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    text = "First line\u2028second\u2029third\u0085fourth and the"
    good = json.dumps({"id": "ls", **GOOD, "prefix": text}, ensure_ascii=False).encode()
    # An answer that holds a line separator (its id echoed back) is still one line.
    bad = json.dumps({"id": "a\u2028b", "prefix": 5}, ensure_ascii=False).encode()
    lines = good + b"\n" + bad + b"\n"
    proc = run(["lsp", "--jsonl", "--model", tiny_model_dir], lines, server_env(tmp_path))
    assert proc.returncode == 0, proc.stderr.decode()
    replies = [json.loads(x) for x in proc.stdout.decode("utf-8").splitlines()]
    assert {r["id"] for r in replies} == {"ls", "a\u2028b"}, replies
    assert "text" in next(r for r in replies if r["id"] == "ls")


def test_jsonl_markers_in_the_prefix_are_text(fim_dir: Path, tmp_path: Path) -> None:
    # Answers without error; the encoding itself is covered through the LSP's status above.
    lines = [json.dumps({"id": "m", **GOOD, "prefix": INJECTED, "suffix": "x\ny"}).encode()]
    (reply,) = jsonl(fim_dir, tmp_path, lines)
    assert reply["id"] == "m" and "text" in reply, reply


# -- the LSP before initialize -------------------------------------------------------------------


def test_lsp_request_before_initialize_is_server_not_initialized(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    client = RawClient([*SCRIBE, "lsp", "--model", str(tiny_model_dir)], server_env(tmp_path))
    try:
        reply = client.request("scribe/status", None)
        assert reply["error"]["code"] == -32002, reply
        assert "initialize" in reply["error"]["message"]
        assert "RuntimeError" not in json.dumps(reply)
        init = client.request("initialize", {"processId": None, "capabilities": {}})
        assert "capabilities" in init["result"]
        client.notify("initialized", {})
        assert client.request("scribe/status", None)["result"]["state"] in ("loading", "warm")
    finally:
        client.proc.kill()
        client.proc.wait()
