"""Recording and replaying raw Finnhub messages as JSON lines.

File format: one raw message per line, exactly as the socket delivered it (Finnhub
sends compact one-line JSON, pings and errors included). A message that could not
be told apart from the line structure (it contains a line break, starts with a
double quote, or is blank) is written as a JSON string literal instead, and such a
line is unescaped on reading. Valid Finnhub messages are JSON objects, so they never
start with a quote and the two forms cannot be confused.

A line longer than MAX_LINE_CHARS is no message: it is never read whole, and replay
hands on a line_too_long Rejection with its first characters instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from contract.validation import MIN_TRADE_TS_MS
from producer.messages import DEFAULT_MAX_FUTURE_MS, LINE_TOO_LONG, Rejection
from producer.pacing import Pacer

# Finnhub's messages are a few KiB at most; a longer line is a broken or foreign file,
# and reading it whole could take any amount of memory (1 MiB for ASCII text).
MAX_LINE_CHARS = 1024 * 1024
# What a dead letter keeps of a line too long: enough to recognise it.
LONG_LINE_KEPT_CHARS = 4096
# The rest of such a line is read and dropped this much at a time.
SKIP_CHARS = 64 * 1024


def encode_line(raw: str | bytes) -> str:
    """The record-file line (without newline) for one raw message."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
    if "\n" in text or "\r" in text or text.startswith('"') or not text.strip():
        return json.dumps(text, ensure_ascii=False)
    return text


def decode_line(line: str) -> str | None:
    """The raw message of one record-file line; None for a blank line."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if line.startswith('"'):
        try:
            value = json.loads(line)
        except ValueError:
            return line  # not one of ours: hand it on as is, parsing will reject it
        return value if isinstance(value, str) else line
    return line


@dataclass(frozen=True)
class LongLine:
    """A line longer than the cap: where it is, how long, and how it starts."""

    number: int  # 1 for the file's first line
    chars: int  # its length, the line break excluded
    head: str


class _LineReader:
    """file.readline(limit), except that a \r\n cut at the limit stays one line break."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self._cut_after_cr = False

    def readline(self, limit: int) -> str:
        chunk = self._file.readline(limit)
        if self._cut_after_cr and chunk == "\n":
            chunk = self._file.readline(limit)
        # A \r as the last character allowed: the \n that may follow is not read yet.
        self._cut_after_cr = len(chunk) == limit and chunk.endswith("\r")
        return chunk


def _line_break(chunk: str) -> int:
    """How many characters of line break end the chunk (0: none)."""
    if chunk.endswith("\r\n"):
        return 2
    return 1 if chunk.endswith(("\n", "\r")) else 0


def read_lines(file: IO[str], max_chars: int = MAX_LINE_CHARS,
               kept_chars: int = LONG_LINE_KEPT_CHARS,
               skip_chars: int = SKIP_CHARS) -> Iterator[str | LongLine]:
    """The lines of a text file opened with newline="", exactly as iterating it gives
    them, except each line longer than `max_chars` (its line break excluded): that one
    is a LongLine, read `skip_chars` at a time past its first `max_chars` + 2."""
    reader = _LineReader(file)
    limit = max_chars + 2  # the longest line allowed, with a \r\n
    number = 0
    while chunk := reader.readline(limit):
        number += 1
        ended = _line_break(chunk) > 0 or len(chunk) < limit  # < limit: the end of file
        chars = len(chunk) - _line_break(chunk)
        if ended and chars <= max_chars:
            yield chunk
            continue
        head = chunk[:min(kept_chars, max_chars)]
        while not ended and (rest := reader.readline(skip_chars)):
            chars += len(rest) - _line_break(rest)
            ended = _line_break(rest) > 0
        yield LongLine(number, chars, head)


def long_line_rejection(line: LongLine, max_chars: int = MAX_LINE_CHARS) -> Rejection:
    return Rejection(LINE_TOO_LONG, f"line {line.number} has {line.chars} characters, more "
                     f"than {max_chars}; its first {len(line.head)} are kept",
                     line.head, raw_chars=line.chars)


def read_messages(path: Path, max_chars: int = MAX_LINE_CHARS) -> Iterator[str | Rejection]:
    """Every raw message of a record file, in file order; a Rejection for a line too
    long to be one."""
    with path.open(encoding="utf-8", errors="backslashreplace", newline="") as file:
        for line in read_lines(file, max_chars):
            if isinstance(line, LongLine):
                yield long_line_rejection(line, max_chars)
            elif (raw := decode_line(line)) is not None:
                yield raw


def message_time(raw: str, latest_ms: int) -> int | None:
    """Latest plausible trade time (`t`, epoch ms) in a raw message, for pacing.

    Only times the parser would accept count (from 2000-01-01 up to `latest_ms`, the
    replay's receive time plus the allowed skew): a trade dated 2099 or 2**63-1 is
    dead-lettered, and must not make the replay sleep. None if there is none.
    """
    try:
        message = json.loads(raw)
        data = message["data"] if message.get("type") == "trade" else None
    except (ValueError, AttributeError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(data, list):
        return None
    times = [t for item in data
             if isinstance(item, dict) and type(t := item.get("t")) is int
             and MIN_TRADE_TS_MS <= t <= latest_ms]
    return max(times) if times else None


def replay_messages(path: Path, speed: float, stop: threading.Event,
                    max_future_ms: int = DEFAULT_MAX_FUTURE_MS,
                    now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
                    pacer: Pacer | None = None) -> Iterator[str | Rejection]:
    """Raw messages of a record file, paced by their trade times (speed 0: no waits).

    A line too long to be a message comes as its Rejection, without a wait.
    """
    pacer = pacer or Pacer(speed, stop)
    for raw in read_messages(path):
        event_ms = (message_time(raw, now_ms() + max_future_ms)
                    if speed > 0 and isinstance(raw, str) else None)
        if not pacer.wait(event_ms):
            return
        yield raw


class RecordWriter:
    """Appends raw messages to a record file, one line each, flushed per message.

    Any of `secrets` (the API token) in a message is masked before it is written.
    """

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # backslashreplace: a lone surrogate (from a JSON-string line) is written as
        # its escape instead of failing the write.
        self._file: IO[str] = path.open("a", encoding="utf-8", errors="backslashreplace",
                                        newline="\n")
        self._secrets = tuple(s for s in secrets if s)

    def write(self, raw: str | bytes) -> None:
        line = encode_line(raw)
        # Only the secret values are masked: the rest of the message stays exact.
        for secret in self._secrets:
            line = line.replace(secret, "***")
        # Flushing per message keeps the file complete up to a crash; live traffic is
        # tens of messages per second, so the syscalls do not matter.
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
