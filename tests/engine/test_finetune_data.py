"""Fine-tuning data: formats, masking, splits, packing, the token cache, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scribe.engine.errors import InputError
from scribe.engine.finetune.data import cut_passages, find_files, read_documents
from scribe.engine.finetune.splits import split_documents
from scribe.engine.finetune.tokens import cache_key, load_cache, pack, save_cache, tokenize
from scribe.engine.prompting.chat_format import ChatFormat
from tests import factory
from tests.factory import english, write_pairs, write_text

CHAT = ChatFormat(
    system="A conversation.",
    user="\n\nWriter: $message",
    assistant="\n\nAssistant: $message",
    reply="\n\nAssistant:",
)


def docs_of(tmp_path: Path, name: str, text: str, chat: ChatFormat | None = CHAT):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return read_documents(find_files([str(path)]), chat)


def test_text_files_are_cut_at_paragraphs_and_join_back_exactly(tmp_path: Path) -> None:
    text = english(300)
    pieces = cut_passages(text, 1000)
    assert "".join(pieces) == text
    assert len(pieces) > 10
    assert all(p.endswith("\n\n") for p in pieces[:-1])
    docs = docs_of(tmp_path, "book.txt", text)
    assert [d.eos for d in docs].count(True) == 1 and docs[-1].eos  # EOS only at the file's end
    assert "".join(d.segments[0].text for d in docs) == text


def test_prompt_completion_loss_covers_the_completion_and_eos_only(tmp_path: Path) -> None:
    tok = factory.tiny_tokenizer()
    line = json.dumps({"prompt": "The quick brown fox", "completion": " jumps over"})
    docs = docs_of(tmp_path, "pairs.jsonl", line + "\n")
    part = tokenize(docs, tok)
    ids, mask = part.document(0)
    prompt_ids = tok.encode("The quick brown fox", add_special_tokens=False)
    completion_ids = tok.encode(" jumps over", add_special_tokens=False)
    assert ids == prompt_ids + completion_ids + [tok.eos_token_id]
    assert mask == [False] * len(prompt_ids) + [True] * (len(completion_ids) + 1)
    assert docs[0].rendered(eos_text="<eos>") == "⟦The quick brown fox⟧ jumps over<eos>"


def test_chat_transcripts_train_on_assistant_turns_with_the_chat_format(tmp_path: Path) -> None:
    record = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello there."},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Goodbye."},
        ]
    }
    docs = docs_of(tmp_path, "chat.jsonl", json.dumps(record) + "\n")
    doc = docs[0]
    assert doc.kind == "chat" and doc.eos
    text = "".join(s.text for s in doc.segments)
    assert text == (
        "A conversation.\n\nWriter: Hi\n\nAssistant: Hello there.\n\nWriter: Bye"
        "\n\nAssistant: Goodbye."
    )
    trained = [s.text for s in doc.segments if s.trainable]
    # Each reply after the cue, and the user header that hands the turn back.
    assert trained == [" Hello there.", "\n\nWriter:", " Goodbye."]


def test_chat_format_comes_from_the_chat_template() -> None:
    chat = ChatFormat.from_template("chat")
    assert "$message" in chat.user and "$message" in chat.assistant
    assert chat.assistant.startswith(chat.reply)


def test_folders_are_walked_and_formats_detected(tmp_path: Path) -> None:
    write_text(tmp_path / "data", "a.txt", 3)
    write_pairs(tmp_path / "data" / "sub")
    (tmp_path / "data" / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "data" / "notes").write_text('{"prompt": "a", "completion": "b"}\n')
    found = find_files([str(tmp_path / "data")])
    formats = {p.name: fmt for p, fmt in found.files}
    assert formats == {"a.txt": "text", "pairs.jsonl": "jsonl"}
    assert [p.name for p in found.skipped] == ["image.png", "notes"]
    explicit = find_files([str(tmp_path / "data" / "notes")])
    assert explicit.files[0][1] == "jsonl"  # sniffed: no suffix, JSON object lines


def test_split_is_seeded_by_document_and_deterministic(tmp_path: Path) -> None:
    docs = docs_of(tmp_path, "book.txt", english(400))
    a = split_documents(docs, 0.1, 0.1, seed=3)
    b = split_documents(docs, 0.1, 0.1, seed=3)
    c = split_documents(docs, 0.1, 0.1, seed=4)
    ids = lambda s: [[id(d) for d in part] for part in s.parts().values()]  # noqa: E731
    assert ids(a) == ids(b) and ids(a) != ids(c)
    assert len(a.val) == len(a.test) == round(len(docs) * 0.1)
    assert len(a.train) + len(a.val) + len(a.test) == len(docs)


def test_stream_blocks_overlap_by_one_token_and_examples_stay_whole(tmp_path: Path) -> None:
    tok = factory.tiny_tokenizer()
    docs = docs_of(tmp_path, "book.txt", english(30))
    part = tokenize(docs, tok)
    blocks = pack(part, 16, tok.eos_token_id, keep_tail=False)
    flat = part.ids.tolist()
    assert blocks.ids[0].tolist() == flat[:16] and blocks.ids[1].tolist() == flat[15:31]
    evaluation = pack(part, 16, tok.eos_token_id, keep_tail=True)
    # Every token but the first is a target exactly once.
    assert evaluation.targets == len(flat) - 1
    pairs = docs_of(tmp_path, "p.jsonl", write_pairs(tmp_path, 10).read_text())
    ex = pack(tokenize(pairs, tok), 64, tok.eos_token_id, keep_tail=False)
    for row_ids, row_mask in zip(ex.ids, ex.mask, strict=True):
        eos_at = (row_ids == tok.eos_token_id) & row_mask
        assert eos_at.any()  # every block holds whole examples, each ending with its EOS
    assert ex.targets == sum(int(tokenize([d], tok).mask.sum()) for d in pairs)


def test_token_cache_is_keyed_by_files_and_settings(tmp_path: Path) -> None:
    tok = factory.tiny_tokenizer()
    path = write_text(tmp_path, "a.txt", 10)
    files = find_files([str(path)])
    docs = read_documents(files, None)
    parts = {name: tokenize(docs, tok) for name in ("train", "val", "test")}
    key = cache_key(files.files, None, {"seed": 0})
    save_cache(tmp_path, key, parts, {"n": 1})
    loaded, summary = load_cache(tmp_path, key)
    assert summary == {"n": 1} and torch.equal(loaded["train"].ids, parts["train"].ids)
    assert load_cache(tmp_path, cache_key(files.files, None, {"seed": 1})) is None
    path.write_text(english(11), encoding="utf-8")
    assert cache_key(files.files, None, {"seed": 0}) != key


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"  \n", "empty.txt: empty file"),
        ("bin.txt", b"abc\x00def", "looks binary"),
        ("latin.txt", b"caf\xe9 au lait", "not valid UTF-8"),
        (
            "bad.jsonl",
            b'{"prompt": "a", "completion": "b"}\n{"prompt": \n',
            "bad.jsonl:2: not valid JSON",
        ),
        ("keys.jsonl", b'{"question": "a"}\n', 'keys.jsonl:1: needs "prompt" + "completion"'),
        ("nocomp.jsonl", b'{"prompt": "a"}\n', 'nocomp.jsonl:1: needs "prompt" and "completion"'),
        ("roles.jsonl", b'{"messages": [{"role": "bot", "content": "x"}]}\n', "messages[0] needs"),
        (
            "noasst.jsonl",
            b'{"messages": [{"role": "user", "content": "x"}]}\n',
            "no assistant message",
        ),
        ("list.jsonl", b"[1, 2]\n", "list.jsonl:1: a JSON list, expected an object"),
    ],
)
def test_bad_files_name_the_file_line_and_fix(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_documents(find_files([str(path)]), CHAT)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_paths_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        find_files([str(tmp_path / "nope.txt")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .txt, .md or .jsonl files"):
        find_files([str(tmp_path / "empty")])
    with pytest.raises(InputError, match="no training data"):
        find_files([])
