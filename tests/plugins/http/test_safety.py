"""The rules for a shared machine: the bind address, Host (DNS rebinding), Origin, the API key,
and the body cap; all refused before any work, in each dialect's error shape."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import openai
import pytest

from scribe.engine.errors import ScribeError
from scribe.plugins.servers.http import server
from scribe.tui import cli
from scribe.tui.commands import lsp_cmd
from tests.plugins.http.live_server import LiveServer


def test_default_bind_is_loopback_and_another_host_warns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The command runs in this process: its log setup and the server itself are stubbed.
    monkeypatch.setattr(lsp_cmd, "_setup_logging", lambda name: tmp_path / f"{name}.log")
    served: list = []
    monkeypatch.setattr(server, "serve", lambda settings, sock: served.append((settings, sock)))
    assert cli.main(["serve", "--http", "--model", "tiny", "--port", "0"]) == 0
    settings, sock = served.pop()
    assert sock.getsockname()[0] == "127.0.0.1" and settings.host == "127.0.0.1"
    sock.close()
    err = capsys.readouterr().err
    assert "warning" not in err and "serving tiny on http://127.0.0.1:" in err
    # Another address: only when asked for, with one warning line (no socket is opened here).
    fake = socket.socket()
    monkeypatch.setattr(server, "bind", lambda host, port: fake)
    monkeypatch.setattr(server, "url", lambda sock: "http://0.0.0.0:8012")
    assert cli.main(["serve", "--http", "--model", "tiny", "--host", "0.0.0.0"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "reachable from other machines" in warning[0]
    assert served.pop()[0].host == "0.0.0.0"
    monkeypatch.setenv("SCRIBE_API_KEY", "from-the-environment")
    assert cli.main(["serve", "--http", "--model", "tiny"]) == 0
    assert served.pop()[0].api_key == "from-the-environment"
    fake.close()
    assert not server.exposed("localhost") and not server.exposed("::1")
    assert server.exposed("0.0.0.0") and server.exposed("192.0.2.7")


def test_a_taken_port_is_one_line() -> None:
    taken = server.bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ScribeError, match=f"cannot listen on 127.0.0.1:{port} .* --port"):
            server.bind("127.0.0.1", port)
    finally:
        taken.close()


def test_http_flags_need_http(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--port", "9"]) == 2
    assert "--port is for the HTTP server: add --http" in capsys.readouterr().err


def test_a_foreign_host_or_origin_is_refused(live: LiveServer) -> None:
    for path in ("/v1/models", "/api/tags", "/health"):
        rebound = live.get(path, headers={"Host": "attacker.example:8012"})
        assert rebound.status_code == 403
    assert "error" in live.get("/api/tags", headers={"Host": "evil.test"}).json()
    for host in ("localhost:8012", f"127.0.0.1:{live.port}", "[::1]:8012"):
        assert live.get("/health", headers={"Host": host}).status_code == 200
    page = live.post("/v1/completions", {"prompt": "x"}, headers={"Origin": "https://evil.test"})
    assert page.status_code == 403 and page.json()["error"]["type"] == "permission_error"
    assert live.post("/infill", {}, headers={"Origin": "null"}).status_code == 403
    local = live.get("/v1/models", headers={"Origin": "http://localhost:5173"})
    assert local.status_code == 200
    assert local.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_allow_origin_and_preflight(make_server) -> None:
    live = make_server(allow_origins=("https://notes.example",))
    preflight = httpx.options(
        live.url + "/v1/chat/completions",
        headers={
            "Origin": "https://notes.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://notes.example"
    other = live.get("/v1/models", headers={"Origin": "https://other.example"})
    assert other.status_code == 403


def test_api_key(make_server, monkeypatch: pytest.MonkeyPatch) -> None:
    live = make_server(api_key="s3cret")
    assert live.get("/health").status_code == 200  # stays open
    for path, shape in (("/v1/models", dict), ("/api/tags", str), ("/props", dict)):
        refused = live.get(path)
        assert refused.status_code == 401 and isinstance(refused.json()["error"], shape)
        wrong = live.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    assert live.get("/api/tags", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=live.url + "/v1", api_key="nope", max_retries=0).models.list()
    good = openai.OpenAI(base_url=live.url + "/v1", api_key="s3cret", max_retries=0)
    assert good.completions.create(model="tiny", prompt="x", max_tokens=1).usage


def test_without_a_key_any_authorization_is_accepted(live: LiveServer) -> None:
    answer = live.get("/v1/models", headers={"Authorization": "Bearer DUMMY_KEY"})
    assert answer.status_code == 200


def test_request_bodies_are_capped(make_server) -> None:
    live = make_server(max_body=2048)
    big = {"prompt": "x" * 4096, "max_tokens": 1}
    for path in ("/v1/completions", "/api/generate", "/completion"):
        assert live.post(path, big).status_code == 413
    # A chunked body declares no length: it is cut off as it arrives.
    chunks = (b'{"prompt": "' + b"x" * 1024 for _ in range(4))
    with live.client() as client:
        answer = client.post("/completion", content=chunks)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == 413
    assert live.post("/completion", {"prompt": "x", "n_predict": 1}).status_code == 200
