"""Running the application on uvicorn: the listening socket (bound first, so a taken port is one
clear line), and the server itself."""

from __future__ import annotations

import socket

from scribe.engine.errors import ScribeError
from scribe.plugins.servers.http.app import ServerSettings, create_app
from scribe.plugins.servers.http.safety import is_loopback

GRACEFUL_S = 3  # streams still open at Ctrl-C get this long; their generations are cancelled


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one; `sock.getsockname()` tells)."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError, OverflowError) as err:
        raise ScribeError(f"--host {host}: not an address of this machine ({err})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        hint = "pick another with --port" if err.errno == 98 else "check --host and --port"
        raise ScribeError(f"cannot listen on {host}:{port} ({err.strerror}); {hint}") from None
    sock.set_inheritable(True)
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def exposed(host: str) -> bool:
    """Whether a bind address is reachable from other machines."""
    return not is_loopback(host)


def make_server(settings: ServerSettings) -> object:
    """A uvicorn Server for the application (its run(sockets=[...]) blocks until stopped)."""
    import uvicorn

    config = uvicorn.Config(
        create_app(settings),
        log_config=None,  # uvicorn's records go to scribe's log file, never to stdout
        access_log=False,  # the guard logs each request without its body
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_S,
        server_header=False,
    )
    return uvicorn.Server(config)


def serve(settings: ServerSettings, sock: socket.socket) -> None:
    server = make_server(settings)
    server.run(sockets=[sock])  # type: ignore[attr-defined]
