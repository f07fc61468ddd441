"""The soak's arithmetic: jcmd's heap figures, the heap's growth, an interval's batches,
the counts of lost and duplicated trades, and the verdict. No stack needed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from bench.soak import (
    growth,
    interval_line,
    interval_summary,
    parse_heap_info,
    producer_count,
    summarize,
    tally,
)

# `jcmd <pid> GC.heap_info` of a JDK 17 JVM on -XX:+UseParallelGC, right after GC.run.
PARALLEL_AFTER_FULL_GC = """\
29521:
 PSYoungGen      total 76288K, used 0K [0x00000000fab00000, 0x0000000100000000, 0x0000000100000000)
  eden space 65536K, 0% used [0x00000000fab00000,0x00000000fab00000,0x00000000feb00000)
  from space 10752K, 0% used [0x00000000ff580000,0x00000000ff580000,0x0000000100000000)
  to   space 10752K, 0% used [0x00000000feb00000,0x00000000feb00000,0x00000000ff580000)
 ParOldGen       total 175104K, used 67826K [0x00000000f0000000, 0x00000000fab00000, 0x00000000fab00000)
  object space 175104K, 38% used [0x00000000f0000000,0x00000000f423c940,0x00000000fab00000)
 Metaspace       used 9136K, committed 9408K, reserved 1114112K
  class space    used 1095K, committed 1216K, reserved 1048576K
"""  # noqa: E501 (jcmd's own lines)

# Allocation between GC.run and GC.heap_info leaves some of the young generation used.
PARALLEL_BUSY = """\
 PSYoungGen      total 305664K, used 15728K [0x0, 0x0, 0x0)
  eden space 262144K, 6% used [0x0,0x0,0x0)
  from space 43520K, 0% used [0x0,0x0,0x0)
  to   space 43520K, 0% used [0x0,0x0,0x0)
 ParOldGen       total 699392K, used 102400K [0x0, 0x0, 0x0)
  object space 699392K, 14% used [0x0,0x0,0x0)
 Metaspace       used 120000K, committed 121000K, reserved 1163264K
"""

G1 = """\
 garbage-first heap   total 262144K, used 20480K [0x00000000f0000000, 0x0000000100000000)
  region size 1024K, 2 young (2048K), 0 survivors (0K)
 Metaspace       used 9136K, committed 9408K, reserved 1114112K
"""


def test_the_heap_is_young_plus_old_used_and_metaspace_is_not_counted() -> None:
    after = parse_heap_info(PARALLEL_AFTER_FULL_GC)
    assert (after.young_kib, after.old_kib) == (0, 67826)
    busy = parse_heap_info(PARALLEL_BUSY)
    assert (busy.young_kib, busy.old_kib) == (15728, 102400)
    assert busy.live_mib == pytest.approx((15728 + 102400) / 1024)
    assert busy.old_mib == 100.0


def test_sizes_in_other_units_are_converted_to_kib() -> None:
    text = PARALLEL_BUSY.replace("used 15728K", "used 16M").replace("used 102400K", "used 1G")
    heap = parse_heap_info(text)
    assert (heap.young_kib, heap.old_kib) == (16 * 1024, 1024 * 1024)


def test_another_collector_or_no_output_is_an_error() -> None:
    for text in (G1, "", "29521:\nCommand executed successfully\n"):
        with pytest.raises(ValueError, match="parallel collector"):
            parse_heap_info(text)


def test_growth_runs_over_the_last_window_from_the_nearest_sample() -> None:
    # One sample every 5 minutes for an hour, measured a little late each time.
    points = [(300 * k + 1.5, 200.0 + k) for k in range(1, 13)]
    change = growth(points, 1800)
    assert change is not None
    assert (change.start_min, change.end_min) == (30.0, 60.0)
    assert (change.start_mib, change.end_mib) == (206.0, 212.0)
    assert change.pct == pytest.approx(6 / 206 * 100)


def test_growth_skips_missing_samples_and_starts_a_short_run_at_its_first() -> None:
    change = growth([(300, 100.0), (600, None), (900, 104.0)], 1800)
    assert change is not None and (change.start_min, change.end_min) == (5.0, 15.0)
    assert change.pct == pytest.approx(4.0)
    shrinking = growth([(300, 100.0), (600, 90.0)], 1800)
    assert shrinking is not None and shrinking.pct == pytest.approx(-10.0)
    assert growth([(300, 100.0), (600, None)], 1800) is None
    assert growth([], 1800) is None


T0 = datetime(2026, 12, 3, 10, 0, 0)  # stream_progress timestamps: naive UTC


def batch(seconds: float, trades: int, p99: float | None, lag: int | None) -> SimpleNamespace:
    return SimpleNamespace(finished_at=T0 + timedelta(seconds=seconds), trades=trades,
                           records=trades, rejected=0, trade_latency_p99_ms=p99,
                           kafka_lag_records=lag)


def ms(seconds: float) -> float:
    return (T0.replace(tzinfo=timezone.utc) + timedelta(seconds=seconds)).timestamp() * 1000


def test_an_interval_takes_the_worst_p99_of_its_own_batches_and_the_latest_lag() -> None:
    rows = [batch(100, 500, 9000.0, 4000), batch(350, 1000, 300.0, 20),
            batch(400, 1000, None, 15), batch(590, 1000, 450.0, 7), batch(650, 1000, 80.0, 3)]
    second = interval_summary(rows, ms(300), ms(600))
    assert second == {"trades_written": 3500, "records_read": 3500, "rejected": 0,
                      "batches": 3, "trade_p99_ms": 450.0, "kafka_lag_records": 7}
    first = interval_summary(rows, ms(0), ms(300))
    assert (first["batches"], first["trade_p99_ms"], first["trades_written"]) == (1, 9000.0, 500)


def test_an_interval_without_batches_has_no_p99() -> None:
    empty = interval_summary([], ms(0), ms(300))
    assert (empty["batches"], empty["trade_p99_ms"], empty["kafka_lag_records"]) == (0, None, None)
    quiet = interval_summary([batch(100, 10, 5.0, 0)], ms(300), ms(600))
    assert (quiet["batches"], quiet["trade_p99_ms"], quiet["kafka_lag_records"]) == (0, None, 0)


def test_the_producer_count_is_its_latest_line() -> None:
    log = ("2026-12-03 INFO producer.stats: status: messages=10 trades_sent=9990 rejected=0\n"
           "2026-12-03 INFO producer.app: finished: messages=20 trades_sent=20000 rejected=0\n")
    assert producer_count(log) == 20000
    assert producer_count("starting\n") is None


def test_tally_finds_missing_repeated_and_unsent_offsets() -> None:
    begins, ends = {0: 0, 1: 10}, {0: 4, 1: 13}
    complete = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 10), (1, 11), (1, 12)]
    assert tally(complete, begins, ends) == (7, 0, 0)
    # Offset 0/2 lost; 1/11 twice; 1/13 was never sent; partition 2 does not exist.
    broken = [(0, 0), (0, 1), (0, 3), (1, 10), (1, 11), (1, 11), (1, 12), (1, 13), (2, 0)]
    assert tally(broken, begins, ends) == (9, 1, 3)
    assert tally([], begins, ends) == (0, 7, 0)


def sample(elapsed_s: float, heap: float | None, p99: float | None = 400.0) -> dict:
    return {"elapsed_s": elapsed_s, "heap_live_mib": heap,
            "heap_old_mib": None if heap is None else heap - 10, "trade_p99_ms": p99}


COUNTS = {"producer_sent": 3_600_000, "topic_records": 3_600_000, "rows": 3_600_000,
          "missing_rows": 0, "duplicated_rows": 0, "rejected": 0, "job_exit_code": 0}
HOUR = [sample(300 * k, 200.0 + (k >= 6) * 4) for k in range(1, 13)]


def test_a_clean_hour_meets_every_target() -> None:
    result = summarize(HOUR, 1200.0, 1536, 1800, COUNTS)
    assert result["targets_met"] and all(result["targets"].values())
    # The live heap is the old generation; young plus old is reported beside it.
    assert result["live_heap"] == {"from_min": 30.0, "to_min": 60.0, "from_mib": 194.0,
                                   "to_mib": 194.0, "growth_pct": 0.0, "trend_pct": 0.0}
    assert result["heap_after_gc"]["from_mib"] == 204.0
    assert (result["lost"], result["duplicated"]) == (0, 0)
    assert result["trade_p99_ms"] == [400.0] * 12


def test_each_missed_target_is_named() -> None:
    # Over the last 30 minutes the old generation grows by 2% of 190 MiB every sample:
    # 190, 193.8, ... 212.8, a straight line up 12%.
    leaking = [*HOUR[:5], *(sample(300 * k, 200.0 + 190 * 0.02 * (k - 6), p99=400.0)
                            | {"heap_old_mib": 190 * (1 + 0.02 * (k - 6))}
                            for k in range(6, 13))]
    result = summarize(leaking, 1536.0, 1536, 1800, COUNTS)
    assert result["live_heap"]["trend_pct"] == pytest.approx(12.0)
    assert result["targets"] == {"rss_below_limit": False, "heap_growth_within_target": False,
                                 "nothing_lost": True, "nothing_duplicated": True}
    assert not result["targets_met"]
    assert summarize([sample(300, None)], 100.0, 1536, 1800, COUNTS)["targets"][
        "heap_growth_within_target"] is False


def test_the_producer_count_against_the_topic_counts_as_lost_or_duplicated() -> None:
    short = {**COUNTS, "producer_sent": 3_600_005, "missing_rows": 2}
    assert summarize(HOUR, 1200.0, 1536, 1800, short)["lost"] == 7
    extra = {**COUNTS, "producer_sent": 3_599_999, "duplicated_rows": 1}
    result = summarize(HOUR, 1200.0, 1536, 1800, extra)
    assert (result["lost"], result["duplicated"]) == (0, 2)
    unknown = {**COUNTS, "producer_sent": None}
    assert summarize(HOUR, 1200.0, 1536, 1800, unknown)["targets_met"]


def test_the_interval_line_shows_every_figure_and_what_is_unknown() -> None:
    line = interval_line({**sample(600, 212.4), "trades_written": 590_000,
                          "producer_sent": 600_120, "batches": 812, "kafka_lag_records": 35,
                          "rss_mib": {"job": 1100.4, "kafka": 700.0}})
    assert line.startswith(" 10.0 min: 590,000 trades written (600,120 sent), trade p99 400 ms")
    assert "worst of 812 batches" in line and "lag 35 records" in line
    assert "RSS job 1,100 MiB, kafka 700 MiB, cassandra n/a" in line
    assert "live heap 202 MiB (young plus old 212 MiB)" in line
    unknown = interval_line({**sample(300, None, None), "trades_written": 0, "producer_sent": None,
                             "batches": 0, "kafka_lag_records": None, "rss_mib": {"job": 0.0}})
    assert "(n/a sent), trade p99 n/a" in unknown and "live heap n/a" in unknown


def test_the_rss_peak_says_when_and_which_processes() -> None:
    """A spawned child of a watched group shows up in the peak's breakdown by name."""
    import subprocess

    from bench.stream_job import RssSampler

    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    sampler = RssSampler("VmRSS")
    try:
        sampler.watch("child", child.pid)
        sampler.sample()
    finally:
        child.kill()
        child.wait()
        peak = sampler.stop()
    assert peak["child"] > 0
    assert 0 <= sampler.peak_at["child"] < 60
    assert [name for name, _ in sampler.peak_parts["child"]] == ["sleep"]


def test_one_high_last_sample_is_noise_not_growth() -> None:
    """The old generation at 194 MiB for 25 minutes, then 206.2 (+6.3% between the two
    ends): the fitted line rises 4.09% (slope 1.307 MiB per sample from 191.82)."""
    jump = [*HOUR[:-1], {**sample(3600, 216.2), "heap_old_mib": 206.2}]
    heap = summarize(jump, 1200.0, 1536, 1800, COUNTS)["live_heap"]
    assert heap["growth_pct"] == pytest.approx(6.29, abs=0.01)
    assert heap["trend_pct"] == pytest.approx(4.09, abs=0.01)


def test_young_allocation_alone_is_no_heap_growth() -> None:
    """Young plus old up 20% while the old generation stays: the live set did not grow."""
    noisy = [*HOUR[:-1], {**sample(3600, 204.0 * 1.2), "heap_old_mib": 194.0}]
    result = summarize(noisy, 1200.0, 1536, 1800, COUNTS)
    assert result["targets"]["heap_growth_within_target"]
    assert result["heap_after_gc"]["growth_pct"] == pytest.approx(20.0)


def test_pss_counts_the_pages_a_forked_child_shares_once() -> None:
    """A child forked from this test shares its pages: its VmRSS and the parent's,
    summed, count them twice; their PSS, summed, about once."""
    import os

    from bench.common import status_kib

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait until told, without exec (pages stay shared)
        os.close(write)
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    try:
        # Shared from the fork on: nothing to wait for.
        rss = status_kib(os.getpid(), "VmRSS") + status_kib(pid, "VmRSS")
        pss = status_kib(os.getpid(), "Pss") + status_kib(pid, "Pss")
        assert 0 < pss < 0.8 * rss
    finally:
        os.write(write, b"x")
        os.waitpid(pid, 0)
