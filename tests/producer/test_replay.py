"""Record files and replay pacing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from producer.pacing import Pacer, WallClockCap
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


LATEST = 1_732_200_000_000  # the replay's receive time plus the skew


def test_message_time_is_the_latest_trade_time() -> None:
    raw = ('{"type":"trade","data":[{"t":1732180000123},{"t":1732180000100},'
           '{"t":"bad"},"junk"]}')
    assert message_time(raw, LATEST) == 1732180000123
    assert message_time('{"type":"ping"}', LATEST) is None
    assert message_time("{not json", LATEST) is None
    assert message_time('{"type":"trade","data":5}', LATEST) is None
    assert message_time("[]", LATEST) is None


def test_message_time_ignores_times_the_parser_rejects() -> None:
    # t = 2**63-1 and a trade dated 2099 would make pacing sleep (or overflow).
    raw = ('{"type":"trade","data":[{"t":9223372036854775807},{"t":4070908800000},'
           '{"t":1732180000123},{"t":1732180000}]}')
    assert message_time(raw, LATEST) == 1732180000123
    assert message_time('{"type":"trade","data":[{"t":9223372036854775807}]}', LATEST) is None
    assert message_time(f'{{"type":"trade","data":[{{"t":{LATEST + 1}}}]}}', LATEST) is None


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


def test_pacer_does_not_wait_out_a_gap_longer_than_the_maximum() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, threading.Event(), clock, max_gap_ms=60_000)
    assert pacer.delay_for(1_000) == 0.0
    assert pacer.delay_for(61_000) == pytest.approx(60.0)  # exactly the maximum: waited
    assert pacer.delay_for(10**12) == 0.0  # a jump of decades: the timeline restarts
    assert pacer.delay_for(10**12 + 500) == pytest.approx(0.5)


def test_wall_clock_cap_waits_only_while_event_time_is_ahead() -> None:
    now = [1_732_180_000_000]
    cap = WallClockCap(threading.Event(), lambda: now[0])
    assert cap.delay_for(now[0] - 5_000) == cap.delay_for(now[0]) == cap.delay_for(None) == 0
    assert cap.delay_for(now[0] + 1_500) == pytest.approx(1.5)


class RecordingPacer(Pacer):
    """A Pacer on a fake clock that records the delays it asks for instead of sleeping."""

    def __init__(self, speed: float, clock: FakeClock) -> None:
        super().__init__(speed, threading.Event(), clock)
        self.clock = clock
        self.delays: list[float] = []

    def wait(self, event_ms: float | None) -> bool:
        delay = self.delay_for(event_ms)
        self.delays.append(delay)
        self.clock.now += delay  # as if it had slept exactly that long
        return True


def test_replay_keeps_the_original_pacing(tmp_path: Path) -> None:
    path = tmp_path / "paced.jsonl"
    times = [1732180000000, 1732180000100, 1732180000050, 1732180000400]
    path.write_text("".join(f'{{"type":"trade","data":[{{"t":{t}}}]}}\n' for t in times)
                    + '{"type":"ping"}\n')
    pacer = RecordingPacer(2.0, FakeClock())
    out = list(replay_messages(path, 2.0, threading.Event(), 60_000, lambda: LATEST, pacer))
    assert len(out) == 5
    # Speed 2: 100 ms of event time is 0.05 s; out of order and pings never wait.
    assert pacer.delays == pytest.approx([0.0, 0.05, 0.0, 0.15, 0.0])
    stop = threading.Event()
    stop.set()
    assert list(replay_messages(path, 1.0, stop)) == []


def test_replay_of_hostile_times_never_waits_long(tmp_path: Path) -> None:
    path = tmp_path / "hostile.jsonl"
    times = [1732180000000, 2**63 - 1, 4070908800000, 1732180000200, 10**30]
    path.write_text("".join(f'{{"type":"trade","data":[{{"t":{t}}}]}}\n' for t in times))
    pacer = RecordingPacer(1.0, FakeClock())
    out = list(replay_messages(path, 1.0, threading.Event(), 60_000, lambda: LATEST, pacer))
    assert len(out) == 5
    assert pacer.delays == pytest.approx([0.0, 0.0, 0.0, 0.2, 0.0])


def test_record_writer_masks_the_token_and_survives_surrogates(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    token = "Tok3n-abc"
    with RecordWriter(path, (token,)) as writer:
        writer.write(f'{{"type":"trade","data":[{{"s":"{token}"}}]}}')
        writer.write(f"wss://x?token={token}\n")
        writer.write("lone \ud800 surrogate\n")
    text = path.read_text(encoding="utf-8")
    assert token not in text
    assert list(read_messages(path))[:2] == ['{"type":"trade","data":[{"s":"***"}]}',
                                             "wss://x?token=***\n"]
    assert len(text.splitlines()) == 3
