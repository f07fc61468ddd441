"""Record files and replay pacing."""

from __future__ import annotations

import io
import json
import threading
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.kafka_sink import dead_letter_value
from producer.messages import Rejection
from producer.pacing import Pacer, WallClockCap
from producer.replay import (
    LongLine,
    RecordWriter,
    decode_line,
    encode_line,
    message_time,
    read_lines,
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


MIB = 1024 * 1024
PING = '{"type":"ping"}'


def test_a_line_too_long_is_dead_lettered_and_the_lines_after_it_replay(
        tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_text(f"{MESSAGES[0]}\n" + "x" * (5 * MIB) + f"\r\n{PING}\n" + "y" * (MIB + 1))
    assert list(read_messages(path)) == [
        MESSAGES[0],
        Rejection("line_too_long", "line 2 has 5242880 characters, more than 1048576; "
                                   "its first 4096 are kept", "x" * 4096, raw_chars=5 * MIB),
        PING,
        Rejection("line_too_long", "line 4 has 1048577 characters, more than 1048576; "
                                   "its first 4096 are kept", "y" * 4096, raw_chars=MIB + 1),
    ]


def test_lines_up_to_the_cap_are_messages(tmp_path: Path) -> None:
    path = tmp_path / "edge.jsonl"
    longest = '{"type":"ping","pad":"' + "p" * (MIB - 24) + '"}'
    assert len(longest) == MIB
    path.write_text(f"{longest}\r\n{longest}\n{longest}")
    assert list(read_messages(path)) == [longest] * 3


def test_a_line_too_long_is_never_held_whole(tmp_path: Path) -> None:
    # 16 MiB on one line: reading it whole would allocate 16 MiB at least, while the
    # reader holds the cap (1 MiB) and a chunk of the rest at most.
    path = tmp_path / "huge.jsonl"
    with path.open("w") as file:
        for _ in range(16):
            file.write("z" * MIB)
        file.write(f"\n{PING}\n")
    tracemalloc.start()
    try:
        messages = list(read_messages(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [m if isinstance(m, str) else m.raw_chars for m in messages] == [16 * MIB, PING]
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_the_dead_letter_of_a_long_line_says_it_is_truncated() -> None:
    rejection = Rejection("line_too_long", "line 2 has 5242880 characters, more than 1048576;"
                                           " its first 4096 are kept", "x" * 4096,
                          raw_chars=5 * MIB)
    assert json.loads(dead_letter_value(rejection, 1_732_180_000_000, "replay")) == {
        "reason": "line_too_long: line 2 has 5242880 characters, more than 1048576; its "
                  "first 4096 are kept",
        "raw": "x" * 4096, "ingest_ts": 1_732_180_000_000, "source": "replay",
        "truncated": True, "raw_chars": 5 * MIB, "reason_chars": 88}


# Line breaks of every kind, quotes, blanks, non-ASCII and an undecodable byte.
PIECES = st.sampled_from([b"a", b"bc", b"{}", b'"', b" ", b"\t", "é".encode(), b"\xff",
                          b"\n", b"\r", b"\r\n", b"\n\n"])


def text_file(data: bytes) -> io.TextIOWrapper:
    # Opened as read_messages opens a record file.
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="backslashreplace",
                            newline="")


def content(line: str) -> str:
    return line.removesuffix("\n").removesuffix("\r")


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=60).map(b"".join), st.integers(min_value=1, max_value=12),
       st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=5))
def test_lines_are_split_as_iterating_the_file_splits_them(
        data: bytes, max_chars: int, kept_chars: int, skip_chars: int) -> None:
    expected = [line if len(content(line)) <= max_chars
                else LongLine(number, len(content(line)), line[:min(kept_chars, max_chars)])
                for number, line in enumerate(text_file(data), start=1)]
    assert list(read_lines(text_file(data), max_chars, kept_chars, skip_chars)) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(PIECES, max_size=60).map(b"".join))
def test_under_the_cap_lines_are_unchanged(data: bytes) -> None:
    assert list(read_lines(text_file(data))) == list(text_file(data))
