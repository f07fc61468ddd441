"""Finnhub WebSocket client: connect, subscribe, receive, reconnect, unsubscribe.

`FinnhubStream.messages()` yields every raw message the server sends (text as
delivered) until the stop event is set; disconnects, handshake failures and silent
streams are handled inside with capped exponential backoff and jitter, followed by a
resubscription of every symbol. Only a rejected API token (HTTP 401/403) ends it, by
raising `AuthenticationError`: retrying with the same token cannot help.

The token is part of the URL's query string, so nothing here ever logs the URL or an
exception text without passing it through `redact`, and websocket-client's trace is
never enabled (it would dump the handshake, token included).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websocket
from websocket import ABNF

from contract.exits import ExitCode
from producer.errors import FatalError

log = logging.getLogger(__name__)

TOO_MANY_SYMBOLS = "Subscribing to too many symbols"
AUTH_STATUSES = (401, 403)

_TOKEN_PARAM = re.compile(r"(token=)[^&\s'\"<>]+", re.IGNORECASE)


class AuthenticationError(FatalError):
    """Finnhub refused the WebSocket handshake because of the API token."""

    exit_code = ExitCode.AUTH


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with token query parameters and the given secret values masked."""
    text = _TOKEN_PARAM.sub(r"\1***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def build_url(base_url: str, token: str) -> str:
    """The endpoint URL with the token added to (or replacing it in) the query."""
    parts = urlsplit(base_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    query.append(("token", token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def subscribe_message(symbol: str) -> str:
    return json.dumps({"type": "subscribe", "symbol": symbol})


def unsubscribe_message(symbol: str) -> str:
    return json.dumps({"type": "unsubscribe", "symbol": symbol})


def explain_error(msg: str) -> str:
    """A Finnhub error message with what the user can do about it."""
    if TOO_MANY_SYMBOLS.lower() in msg.lower():
        return (
            f"Finnhub error: {msg!r}: this API key already has as many symbol subscriptions "
            "as its plan allows (free tier: about 50 per connection, and one connection per "
            "key; another client using the same key counts too). Finnhub does not say "
            "which symbol was refused, so some of --symbols get no data: subscribe to "
            "fewer symbols or stop the other client."
        )
    return f"Finnhub error: {msg!r}"


class Backoff:
    """Capped exponential backoff with 'equal jitter': half fixed, half random."""

    def __init__(self, base_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        self._base_s = base_s
        self._cap_s = cap_s
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap_s, self._base_s * 2.0 ** min(self._attempt, 30))
        self._attempt += 1
        return ceiling / 2.0 + self._rng.uniform(0.0, ceiling / 2.0)

    def reset(self) -> None:
        self._attempt = 0


class FinnhubStream:
    """Raw messages from Finnhub for a fixed set of symbols, across reconnects."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        symbols: Sequence[str],
        stop: threading.Event,
        idle_timeout_s: float = 90.0,
        connect_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        on_reconnect: Callable[[float], None] = lambda outage_s: None,
    ) -> None:
        self._base_url = url
        self._token = token
        self._symbols = tuple(symbols)
        self._stop = stop
        self._idle_timeout_s = idle_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._backoff = backoff or Backoff(1.0, 60.0)
        self._on_reconnect = on_reconnect
        # Short socket reads so a stop request is noticed within a second; the idle
        # watchdog is a separate clock over these reads.
        self._poll_s = min(1.0, idle_timeout_s)

    def _redact(self, text: str) -> str:
        return redact(text, (self._token,))

    def messages(self) -> Iterator[str | bytes]:
        lost_at: float | None = None  # when the previous session ended
        while not self._stop.is_set():
            ws = self._connect()
            if ws is None:
                if self._wait_before_retry():
                    continue
                return
            if lost_at is not None:
                outage_s = time.monotonic() - lost_at
                # Finnhub does not replay: whatever traded in the gap is gone for good.
                log.warning("reconnected after %.1f s without a connection; trades of that "
                            "gap are lost (Finnhub does not replay)", outage_s)
                self._on_reconnect(outage_s)
            yield from self._session(ws)
            lost_at = time.monotonic()
            if not self._stop.is_set() and not self._wait_before_retry():
                return

    def _wait_before_retry(self) -> bool:
        """Back off before the next attempt; False if stopped meanwhile."""
        delay = self._backoff.next_delay()
        log.info("reconnecting to Finnhub in %.1f s", delay)
        return not self._stop.wait(delay)

    def _connect(self) -> websocket.WebSocket | None:
        safe_url = self._redact(self._base_url)
        try:
            ws = websocket.create_connection(
                build_url(self._base_url, self._token),
                timeout=self._connect_timeout_s,
                # Undecodable text frames are rejected by the parser (and dead-lettered)
                # instead of killing the connection.
                skip_utf8_validation=True,
                enable_multithread=True,
            )
        except websocket.WebSocketBadStatusException as err:
            if err.status_code in AUTH_STATUSES:
                raise AuthenticationError(
                    f"Finnhub rejected the API token (HTTP {err.status_code}) at {safe_url}: "
                    "check FINNHUB_TOKEN or --token-file (a missing, wrong or revoked key)"
                ) from None
            log.warning("Finnhub handshake failed at %s: HTTP %s", safe_url, err.status_code)
            return None
        except (websocket.WebSocketException, OSError) as err:
            log.warning("cannot connect to Finnhub at %s: %s", safe_url,
                        self._redact(f"{type(err).__name__}: {err}"))
            return None
        log.info("connected to %s", safe_url)
        return ws

    def _session(self, ws: websocket.WebSocket) -> Iterator[str | bytes]:
        clean_stop = False
        try:
            self._send_all(ws, subscribe_message)
            log.info("subscribed to %d symbols", len(self._symbols))
            yield from self._receive(ws)
            clean_stop = self._stop.is_set()
        except GeneratorExit:
            clean_stop = True  # the consumer stopped reading: a clean shutdown
            raise
        except (websocket.WebSocketException, OSError) as err:
            log.warning("connection to Finnhub lost: %s",
                        self._redact(f"{type(err).__name__}: {err}"))
        finally:
            if clean_stop:
                self._unsubscribe(ws)
            self._close(ws)

    def _send_all(self, ws: websocket.WebSocket, build: Callable[[str], str]) -> None:
        for symbol in self._symbols:
            ws.send(build(symbol))

    def _receive(self, ws: websocket.WebSocket) -> Iterator[str | bytes]:
        ws.settimeout(self._poll_s)
        last_activity = time.monotonic()
        while not self._stop.is_set():
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                silent_s = time.monotonic() - last_activity
                if silent_s >= self._idle_timeout_s:
                    log.warning("nothing received from Finnhub for %.0f s; reconnecting",
                                silent_s)
                    return
                continue
            last_activity = time.monotonic()
            # The connection works again: the next disconnect starts from a short delay.
            self._backoff.reset()
            if opcode == ABNF.OPCODE_TEXT:
                yield _text(data)
            elif opcode == ABNF.OPCODE_BINARY:
                yield bytes(data)
            elif opcode == ABNF.OPCODE_CLOSE:
                log.warning("Finnhub closed the connection%s", _close_reason(data))
                return
            # Protocol-level ping/pong frames only count as activity.

    def _unsubscribe(self, ws: websocket.WebSocket) -> None:
        try:
            self._send_all(ws, unsubscribe_message)
            log.info("unsubscribed from %d symbols", len(self._symbols))
        except (websocket.WebSocketException, OSError) as err:
            log.info("could not unsubscribe (connection already gone): %s",
                     self._redact(str(err)))

    def _close(self, ws: websocket.WebSocket) -> None:
        # Closing a dead socket can fail; there is nothing left to release then.
        with contextlib.suppress(websocket.WebSocketException, OSError):
            ws.close(timeout=2)


def _text(data: bytes | str) -> str | bytes:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(data)  # the parser rejects it as invalid_utf8


def _close_reason(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    if len(data) >= 2:
        code = int.from_bytes(data[:2], "big")
        reason = data[2:].decode("utf-8", "replace")
        return f" (code {code}{': ' + reason if reason else ''})"
    return ""
