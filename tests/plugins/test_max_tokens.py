"""Max tokens: one rule (options.max_tokens_in_bounds), each door with its own limit and words."""

from __future__ import annotations

import pytest

from scribe.engine.errors import InputError
from scribe.engine.runtime.options import MAX_NEW_TOKENS, GenerationOptions, max_tokens_in_bounds
from scribe.plugins.servers.http.errors import HttpError
from scribe.plugins.servers.http.params import Fields
from scribe.plugins.servers.jsonl_bridge import MAX_TOKENS_LIMIT, RequestError, _parse_request


def test_the_rule() -> None:
    assert max_tokens_in_bounds(1) and max_tokens_in_bounds(MAX_NEW_TOKENS)
    assert not max_tokens_in_bounds(0) and not max_tokens_in_bounds(MAX_NEW_TOKENS + 1)
    assert max_tokens_in_bounds(512, 512) and not max_tokens_in_bounds(513, 512)
    assert max_tokens_in_bounds(10**12, limit=None) and not max_tokens_in_bounds(0, limit=None)


def test_the_engine_options_door() -> None:
    with pytest.raises(InputError, match=f"^max tokens must be from 1 to {MAX_NEW_TOKENS}$"):
        GenerationOptions(max_new_tokens=0)
    assert GenerationOptions(max_new_tokens=MAX_NEW_TOKENS).max_new_tokens == MAX_NEW_TOKENS


def test_the_jsonl_door() -> None:
    def parse(value: object) -> int:
        return _parse_request({"id": 1, "prefix": "x", "max_tokens": value}, 32).max_tokens

    assert parse(MAX_TOKENS_LIMIT) == MAX_TOKENS_LIMIT
    with pytest.raises(RequestError, match='^"max_tokens" must be from 1 to 512, got 513$'):
        parse(MAX_TOKENS_LIMIT + 1)
    with pytest.raises(RequestError, match='^"max_tokens" must be an integer from 1 to 512$'):
        parse(True)


def http_error(body: dict, key: str, **kwargs: object) -> str:
    with pytest.raises(HttpError) as caught:
        Fields(body).max_tokens(key, **kwargs)  # type: ignore[arg-type]
    return str(caught.value.message)


def test_the_http_doors() -> None:
    assert Fields({}).max_tokens("max_tokens", 16) == 16
    assert Fields({"max_tokens": 8.0}).max_tokens("max_tokens") == 8
    assert http_error({"max_tokens": 0}, "max_tokens") == (
        '"max_tokens" must be from 1 to 1e+06, not 0'
    )
    assert http_error({"max_tokens": "ten"}, "max_tokens") == (
        '"max_tokens" must be a whole number, not a string'
    )
    # llama.cpp's n_predict: 0 fills the cache only, -1 asks for as many tokens as fit.
    for value in (0, -1, MAX_NEW_TOKENS):
        assert Fields({"n_predict": value}).max_tokens("n_predict", below_one=True) == value
    assert http_error({"n_predict": MAX_NEW_TOKENS + 1}, "n_predict", below_one=True) == (
        '"n_predict" must be at most 1e+06, not 1e+06'
    )


def test_the_command_line_door() -> None:
    from scribe.tui.cli import build_parser
    from scribe.tui.commands.lsp_cmd import run

    args = build_parser().parse_args(["serve", "--max-tokens", "0"])
    with pytest.raises(InputError, match="^--max-tokens must be at least 1$"):
        run(args)
    assert build_parser().parse_args(["lsp"]).max_tokens == 32
