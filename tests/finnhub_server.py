"""A local stand-in for Finnhub's WebSocket API, for tests.

It speaks the protocol the real server speaks (see the Finnhub notes in the shared
reference): the token is the `token` query parameter and a wrong or missing one
rejects the handshake with HTTP 401; clients send one
`{"type":"subscribe"|"unsubscribe","symbol":...}` per symbol; the server pushes
`{"type":"trade","data":[...]}`, `{"type":"ping"}` and `{"type":"error","msg":...}`;
subscribing past `max_symbols` answers "Subscribing to too many symbols".

Tests drive it from their own thread: push messages, drop connections abruptly or
close them cleanly, and inspect what clients sent.

    with FakeFinnhub(token="t0k3n") as server:
        ...  # point the client at server.url
        server.wait_for(lambda: len(server.subscribed()) == 2)
        server.push_trades([{"s": "AAPL", "p": 1.0, "t": 1732180000000, "v": 1}])
        server.drop()
"""

from __future__ import annotations

import contextlib
import http
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

TOO_MANY_SYMBOLS = "Subscribing to too many symbols"


@dataclass
class ClientMessage:
    """One message a client sent: which connection (1-based), raw text, parsed JSON."""

    connection: int
    raw: str
    parsed: Any = None


@dataclass
class Handshake:
    path: str
    accepted: bool


@dataclass
class _Client:
    number: int
    connection: ServerConnection
    symbols: set[str] = field(default_factory=set)
    open: bool = True


class FakeFinnhub:
    def __init__(self, token: str = "test-token", max_symbols: int = 50) -> None:
        self.token = token
        self.max_symbols = max_symbols
        self.handshakes: list[Handshake] = []
        self.messages: list[ClientMessage] = []
        self._clients: list[_Client] = []
        self._changed = threading.Condition()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle -------------------------------------------------------------------

    def start(self) -> FakeFinnhub:
        # Port 0: the OS picks a free port. No protocol-level pings and no compression,
        # so the stream is exactly what the test pushes (silence stays silent).
        self._server = serve(self._handle, "127.0.0.1", 0, process_request=self._check_token,
                             ping_interval=None, compression=None, close_timeout=1)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="fake-finnhub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self.drop()
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeFinnhub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Endpoint without the token, like FINNHUB_WS_URL."""
        assert self._server is not None, "start() first"
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    # Server side ------------------------------------------------------------------

    def _check_token(self, connection: ServerConnection, request: Request) -> Response | None:
        tokens = parse_qs(urlsplit(request.path).query).get("token", [])
        accepted = tokens == [self.token]
        with self._changed:
            self.handshakes.append(Handshake(request.path, accepted))
            self._changed.notify_all()
        if not accepted:
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    def _handle(self, connection: ServerConnection) -> None:
        with self._changed:
            client = _Client(len(self._clients) + 1, connection)
            self._clients.append(client)
            self._changed.notify_all()
        try:
            for raw in connection:
                self._on_message(client, raw if isinstance(raw, str) else raw.decode())
        except ConnectionClosed:
            pass  # the client went away or the test dropped it: both are normal here
        finally:
            with self._changed:
                client.open = False
                self._changed.notify_all()

    def _on_message(self, client: _Client, raw: str) -> None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        too_many = False
        with self._changed:
            self.messages.append(ClientMessage(client.number, raw, parsed))
            if isinstance(parsed, dict) and isinstance(parsed.get("symbol"), str):
                if parsed.get("type") == "subscribe":
                    too_many = len(client.symbols) >= self.max_symbols
                    if not too_many:
                        client.symbols.add(parsed["symbol"])
                elif parsed.get("type") == "unsubscribe":
                    client.symbols.discard(parsed["symbol"])
            self._changed.notify_all()
        if too_many:
            self._send(client, json.dumps({"type": "error", "msg": TOO_MANY_SYMBOLS}))

    # Test side --------------------------------------------------------------------

    def _open_clients(self) -> list[_Client]:
        with self._changed:
            return [c for c in self._clients if c.open]

    @staticmethod
    def _send(client: _Client, text: str) -> None:
        # A send can race with a disconnect; the test sees that through wait_for.
        with contextlib.suppress(ConnectionClosed):
            client.connection.send(text)

    def push(self, message: str | dict[str, Any]) -> int:
        """Send a raw text (or a dict as JSON) to every open connection; returns how many."""
        text = message if isinstance(message, str) else json.dumps(message)
        clients = self._open_clients()
        for client in clients:
            self._send(client, text)
        return len(clients)

    def push_trades(self, trades: Iterable[dict[str, Any]]) -> int:
        return self.push({"type": "trade", "data": list(trades)})

    def ping(self) -> int:
        return self.push({"type": "ping"})

    def error(self, msg: str) -> int:
        return self.push({"type": "error", "msg": msg})

    def drop(self) -> None:
        """Cut every open connection without a close frame, like a network failure."""
        for client in self._open_clients():
            sock = client.connection.socket
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close_all(self, code: int = 1001, reason: str = "going away") -> None:
        """Close every open connection cleanly, with a close frame (a server restart)."""
        for client in self._open_clients():
            client.connection.close(code, reason)

    @property
    def connections(self) -> int:
        """Connections accepted so far (successful handshakes)."""
        with self._changed:
            return len(self._clients)

    @property
    def open_connections(self) -> int:
        return len(self._open_clients())

    def client_messages(self, connection: int | None = None) -> list[Any]:
        """Parsed messages the clients sent, optionally of one connection only."""
        with self._changed:
            return [m.parsed for m in self.messages
                    if connection is None or m.connection == connection]

    def subscribed(self, connection: int | None = None) -> set[str]:
        """Symbols currently subscribed on open connections (or on one connection)."""
        with self._changed:
            return {s for c in self._clients
                    if (c.open and connection is None) or c.number == connection
                    for s in c.symbols}

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0,
                 what: str = "condition") -> None:
        """Block until predicate() is true; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"fake Finnhub: timed out waiting for {what}")
                # Predicates may call the locking helpers above: the Condition's lock
                # is an RLock, so that is safe from here.
                self._changed.wait(min(remaining, 0.1))
