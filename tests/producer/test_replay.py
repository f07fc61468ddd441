"""Record files and replay pacing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from producer.pacing import Pacer
from producer.replay import (
    RecordWriter,
    decode_line,
    encode_line,
    message_time,
    read_messages,
    replay_messages,
)

MESSAGES = [
    '{"type":"trade","data":[{"s":"AAPL","p":1.5,"t":1732180000123,"v":1,"c":null}]}',
    '{"type":"ping"}',
    '{"type":"error","msg":"Subscribing to too many symbols"}',
    "{not json",
    '{\n  "type": "ping"\n}',  # pretty-printed: contains line breaks
    '"a json string"',
    "",
    "   ",
    "tab\tand unicode ünï",
]


def test_record_then_read_gives_back_every_message_exactly(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "recorded.jsonl"
    with RecordWriter(path) as writer:
        for raw in MESSAGES:
            writer.write(raw)
    with RecordWriter(path) as writer:  # appends
        writer.write(MESSAGES[0])
    assert list(read_messages(path)) == [*MESSAGES, MESSAGES[0]]
    assert len(path.read_text().splitlines()) == len(MESSAGES) + 1


def test_plain_messages_are_stored_verbatim() -> None:
    assert encode_line(MESSAGES[0]) == MESSAGES[0]
    assert decode_line(MESSAGES[0] + "\r\n") == MESSAGES[0]
    assert decode_line("\n") is None


def test_hand_written_files_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "hand.jsonl"
    path.write_text('{"type":"ping"}\r\n\n"unterminated\n')
    assert list(read_messages(path)) == ['{"type":"ping"}', '"unterminated']


def test_message_time_is_the_latest_trade_time() -> None:
    raw = ('{"type":"trade","data":[{"t":1732180000123},{"t":1732180000100},'
           '{"t":"bad"},"junk"]}')
    assert message_time(raw) == 1732180000123
    assert message_time('{"type":"ping"}') is None
    assert message_time("{not json") is None
    assert message_time('{"type":"trade","data":5}') is None
    assert message_time("[]") is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_follows_event_time_scaled_by_speed() -> None:
    clock = FakeClock()
    pacer = Pacer(2.0, threading.Event(), clock)
    assert pacer.delay_for(1_000) == 0.0  # the first message sets the origin
    assert pacer.delay_for(3_000) == pytest.approx(1.0)  # 2 s of events at speed 2
    clock.now += 0.25
    assert pacer.delay_for(3_000) == pytest.approx(0.75)
    assert pacer.delay_for(2_000) == pytest.approx(0.75)  # out of order: no going back
    assert pacer.delay_for(None) == 0.0  # pings and errors go out at once


def test_pacer_speed_zero_never_waits() -> None:
    pacer = Pacer(0.0, threading.Event(), FakeClock())
    assert pacer.delay_for(1_000) == pacer.delay_for(10**12) == 0.0


def test_replay_keeps_the_original_pacing(tmp_path: Path) -> None:
    path = tmp_path / "paced.jsonl"
    path.write_text("".join(
        f'{{"type":"trade","data":[{{"s":"A","p":1,"v":1,"t":{1732180000000 + i * 100}}}]}}\n'
        for i in range(4)))
    started = time.monotonic()
    assert len(list(replay_messages(path, 1.0, threading.Event()))) == 4
    assert time.monotonic() - started == pytest.approx(0.3, abs=0.15)
    stop = threading.Event()
    stop.set()
    assert list(replay_messages(path, 1.0, stop)) == []
