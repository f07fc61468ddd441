"""Soak: the stream job for an hour under load; its memory, live heap, latency, losses.

    python -m bench.soak [--duration 3600] [--rate 1000] [--interval 300] [--symbols 10]
                         [--rss-limit-mib 1536] [--heap-window 1800] [--out .work/bench/soak]

On the running local stack, with a fresh topic and keyspace:
1. the synthetic producer sends --rate trades/s over --symbols for --duration seconds;
   `python -m jobs.stream_processor` (default settings: every candle resolution)
   starts --lead seconds later. Each runs in its own process group; their logs, the
   job's checkpoints and the results are under --out.
2. every --interval seconds one line is printed and one JSON record appended to
   soak.jsonl: minutes since the producer started; the trades the job has written
   (the sum of `trades` over its `stream_progress` rows) and the producer's count
   (its status line, every 10 s); the interval's trade latency p99, which is the
   largest `trade_latency_p99_ms` of the batches that finished in the interval (the
   worst batch's p99: an upper bound of the interval's, not a percentile over its
   trades); the Kafka lag in records of the latest batch; the current RSS (VmRSS,
   not the peak) summed over the job's process group (Python driver and JVM), and
   Kafka's and Cassandra's (their pid files, stack.lifecycle.servers); and the job
   JVM's live heap: `jcmd <pid> GC.run`, a full collection of the parallel collector
   the local driver runs (jobs/session.py), then `jcmd <pid> GC.heap_info`: young
   plus old generation used, and the old generation alone. The forced collection
   pauses the job once an interval: the batch it falls into is slower.
3. when the producer has finished and the job's batches hold every record of the
   topic, the job is stopped with SIGTERM and the keys of `trades` are compared with
   the topic's offsets: an offset without a row is lost, a row beyond one per offset
   (or for an offset never sent) duplicated; so are trades the producer counted as
   sent but the topic does not hold, and the reverse.
The summary: the job's largest memory (PSS summed over its processes, sampled every
second: a page they share counts once; VmRSS the same way beside it) against
--rss-limit-mib, the live heap at the start and the end of the last --heap-window
seconds and its growth (target at most 5%; the old generation after the forced
collection, which holds every object the collection kept), the trade p99 per
interval, lost and duplicated trades (target 0 and 0). Written to soak.json; the exit
code is 1 when a target is missed. The topic and keyspace are dropped at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import group_mib, group_pids
from bench.stream_job import (
    RssSampler,
    environment,
    epoch_ms,
    job_cmd,
    producer_cmd,
    progress_rows,
    start,
    stop,
    wait_for_records,
)
from jobs.kafka_lag import TopicEnds
from stack import lifecycle
from stack.config import from_env
from stack.scratch import drop, fresh_keyspace, fresh_topic

HEAP_GROWTH_TARGET_PCT = 5.0
# The producer's count comes from its status lines: often enough for a 5-minute line.
PRODUCER_STATUS_S = 10

# --- pure parts: parsing and arithmetic -------------------------------------------------------

_GENERATION = re.compile(r"^\s*(PSYoungGen|ParOldGen)\s+total\s+\d+[KMG]?,\s+used\s+(\d+)([KMG]?)",
                         re.MULTILINE)
_KIB = {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024 * 1024}


@dataclass(frozen=True)
class HeapInfo:
    """Used sizes of the parallel collector's generations, in KiB."""

    young_kib: int
    old_kib: int

    @property
    def live_mib(self) -> float:
        return (self.young_kib + self.old_kib) / 1024

    @property
    def old_mib(self) -> float:
        return self.old_kib / 1024


def parse_heap_info(text: str) -> HeapInfo:
    """The young and old generations' used sizes from `jcmd <pid> GC.heap_info` of a JVM
    on the parallel collector (`PSYoungGen total 305664K, used 15728K [...`). Any other
    collector prints other names: ValueError, since its figures would mean other things."""
    used = {name: int(size * _KIB[unit])
            for name, size, unit in ((m[1], int(m[2]), m[3]) for m in _GENERATION.finditer(text))}
    if set(used) != {"PSYoungGen", "ParOldGen"}:
        raise ValueError(f"not the parallel collector's heap: {text.strip()[:200]!r}")
    return HeapInfo(young_kib=used["PSYoungGen"], old_kib=used["ParOldGen"])


@dataclass(frozen=True)
class Growth:
    start_min: float
    end_min: float
    start_mib: float
    end_mib: float
    # The least-squares line through every point of the window, from its start to its
    # end, as a percent of its value at the start: one sample's noise moves it little.
    trend_pct: float = 0.0

    @property
    def pct(self) -> float:
        if self.start_mib <= 0:
            return math.inf
        return (self.end_mib - self.start_mib) / self.start_mib * 100


def growth(points: Sequence[tuple[float, float | None]], window_s: float) -> Growth | None:
    """From the (elapsed s, MiB) point nearest to window_s before the last one to the last
    one; None values (no measurement) are skipped, and fewer than two points give None.
    A run shorter than the window starts at its first point."""
    known = [(t, v) for t, v in points if v is not None]
    if len(known) < 2:
        return None
    end_t, end_v = known[-1]
    start_t, start_v = min(known[:-1], key=lambda p: abs(p[0] - (end_t - window_s)))
    return Growth(round(start_t / 60, 1), round(end_t / 60, 1), start_v, end_v,
                  trend_pct([p for p in known if p[0] >= start_t]))


def trend_pct(points: Sequence[tuple[float, float]]) -> float:
    """The fitted line's rise from the first point's time to the last's, in percent of
    the line's value at the first; inf when that value is not positive."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread if spread else 0.0
    first_t, last_t = points[0][0], points[-1][0]
    at_start = mean_v + slope * (first_t - mean_t)
    if at_start <= 0:
        return math.inf
    return slope * (last_t - first_t) / at_start * 100


def interval_summary(rows: Sequence, since_ms: float, until_ms: float) -> dict[str, Any]:
    """What the job's `stream_progress` rows (sorted by finished_at) say of the interval
    (since_ms, until_ms]: trades written up to its end, its batches, their largest
    trade p99, and the Kafka lag of the latest batch."""
    done = [r for r in rows if epoch_ms(r.finished_at) <= until_ms]
    batches = [r for r in done if epoch_ms(r.finished_at) > since_ms]
    p99s = [r.trade_latency_p99_ms for r in batches if r.trade_latency_p99_ms is not None]
    return {"trades_written": sum(r.trades or 0 for r in done),
            "records_read": sum(r.records or 0 for r in done),
            "rejected": sum(r.rejected or 0 for r in done),
            "batches": len(batches),
            "trade_p99_ms": max(p99s) if p99s else None,
            "kafka_lag_records": done[-1].kafka_lag_records if done else None}


def producer_count(log_text: str) -> int | None:
    """The producer's latest `trades_sent=N` (status lines, then the final summary)."""
    counts = re.findall(r"\btrades_sent=(\d+)", log_text)
    return int(counts[-1]) if counts else None


def tally(keys: Iterable[tuple[int, int]], begins: Mapping[int, int],
          ends: Mapping[int, int]) -> tuple[int, int, int]:
    """(rows, missing, duplicated) of trade rows' (partition, offset) against the offsets
    [begin, end) of each partition: an offset without a row is missing; a second row for
    an offset, or a row for an offset never sent, is duplicated."""
    seen = {p: bytearray(end - begins.get(p, 0)) for p, end in ends.items()}
    rows = duplicated = 0
    for partition, offset in keys:
        rows += 1
        flags = seen.get(partition)
        index = offset - begins.get(partition, 0)
        if flags is None or not 0 <= index < len(flags) or flags[index]:
            duplicated += 1
        else:
            flags[index] = 1
    return rows, sum(flags.count(0) for flags in seen.values()), duplicated


def losses(counts: Mapping[str, Any]) -> tuple[int, int]:
    """(lost, duplicated) over the whole path: the rows against the topic (tally), plus
    the producer's count against the records the topic holds, either way."""
    sent, held = counts.get("producer_sent"), counts["topic_records"]
    short = 0 if sent is None else sent - held
    return (counts["missing_rows"] + max(0, short),
            counts["duplicated_rows"] + max(0, -short))


def summarize(samples: Sequence[Mapping[str, Any]], job_rss_max_mib: float,
              rss_limit_mib: float, window_s: float, counts: Mapping[str, Any]
              ) -> dict[str, Any]:
    """The run's verdict from its interval samples, the job's largest RSS and the counts."""
    lost, duplicated = losses(counts)
    heaps = {}
    for key in ("heap_live_mib", "heap_old_mib"):
        change = growth([(s["elapsed_s"], s[key]) for s in samples], window_s)
        heaps[key] = None if change is None else {
            "from_min": change.start_min, "to_min": change.end_min,
            "from_mib": round(change.start_mib, 1), "to_mib": round(change.end_mib, 1),
            "growth_pct": round(change.pct, 2), "trend_pct": round(change.trend_pct, 2)}
    # The live set is the old generation right after the forced collection: a full
    # collection of the parallel collector compacts every object it keeps into the old
    # generation, so what the young one holds when heap_info runs a moment later is new
    # allocation, which wanders with the load (young plus old is reported beside it).
    # Growth is the fitted trend over the window: two single samples differ by several
    # percent with nothing growing (the old generation wanders by about 10%).
    live = heaps["heap_old_mib"]
    targets = {"rss_below_limit": job_rss_max_mib < rss_limit_mib,
               "heap_growth_within_target": (live is not None
                                             and live["trend_pct"] <= HEAP_GROWTH_TARGET_PCT),
               "nothing_lost": lost == 0, "nothing_duplicated": duplicated == 0}
    return {"job_rss_max_mib": round(job_rss_max_mib, 1), "rss_limit_mib": rss_limit_mib,
            "heap_window_min": window_s / 60, "live_heap": live,
            "heap_after_gc": heaps["heap_live_mib"],
            "trade_p99_ms": [s["trade_p99_ms"] for s in samples],
            **counts, "lost": lost, "duplicated": duplicated,
            "targets": targets, "targets_met": all(targets.values())}


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MiB"


def interval_line(sample: Mapping[str, Any]) -> str:
    sent = sample["producer_sent"]
    p99 = sample["trade_p99_ms"]
    lag = sample["kafka_lag_records"]
    rss = sample["rss_mib"]
    return (f"{sample['elapsed_s'] / 60:5.1f} min: {sample['trades_written']:,} trades written"
            f" ({'n/a' if sent is None else f'{sent:,}'} sent), trade p99"
            f" {'n/a' if p99 is None else f'{p99:,.0f} ms'} (worst of {sample['batches']}"
            f" batches), lag {'n/a' if lag is None else f'{lag:,}'} records; RSS job"
            f" {_mib(rss['job'])}, kafka {_mib(rss.get('kafka'))}, cassandra"
            f" {_mib(rss.get('cassandra'))}; live heap {_mib(sample['heap_old_mib'])}"
            f" (young plus old {_mib(sample['heap_live_mib'])})")


def print_summary(result: Mapping[str, Any]) -> None:
    below = "below" if result["targets"]["rss_below_limit"] else "NOT below"
    for kind in ("pss", "rss"):
        parts = ", ".join(f"{name} {mib:,.0f}"
                          for name, mib in result[f"{kind}_max_parts_mib"].get("job", []))
        print(f"job {kind.upper()} (driver + JVM): at most"
              f" {result[f'{kind}_max_mib'].get('job', 0):,.0f} MiB at"
              f" {result[f'{kind}_max_at_min'].get('job', 'n/a')} min ({parts} MiB)")
    print(f"job PSS {below} the limit of {result['rss_limit_mib']:,.0f} MiB")
    for key, label in (("live_heap", "live heap after a full GC (old generation)"),
                       ("heap_after_gc", "young plus old just after it")):
        change = result[key]
        print(f"{label}: " + ("n/a" if change is None else
                              f"{change['from_mib']:,.1f} MiB at {change['from_min']} min ->"
                              f" {change['to_mib']:,.1f} MiB at {change['to_min']} min,"
                              f" {change['growth_pct']:+.2f}%; fitted trend"
                              f" {change['trend_pct']:+.2f}%"))
    print("trade p99 per interval, ms: " + ", ".join(
        "n/a" if v is None else f"{v:,.0f}" for v in result["trade_p99_ms"]))
    sent = result["producer_sent"]
    print(f"trades sent {'n/a' if sent is None else f'{sent:,}'}, in the topic"
          f" {result['topic_records']:,}, rows {result['rows']:,}: {result['lost']} lost,"
          f" {result['duplicated']} duplicated ({result['rejected']} rejected by the job);"
          f" the job exited with {result['job_exit_code']} on SIGTERM")
    missed = [name for name, met in result["targets"].items() if not met]
    print("all targets met" if not missed else f"targets missed: {', '.join(missed)}")


# --- measuring on the running processes ----------------------------------------------------


def jvm_pid(pgid: int) -> int | None:
    """The java process of a process group: the JVM that PySpark's driver launched."""
    for pid in group_pids(pgid):
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if Path(argv0.decode(errors="replace")).name == "java":
            return pid
    return None


def jcmd_for(pid: int) -> str | None:
    """The jcmd of the JDK the process runs on (beside its java), else JAVA_HOME's or
    the PATH's: a jcmd of another release may fail to attach."""
    candidates = []
    with contextlib.suppress(OSError):
        candidates.append(Path(os.readlink(f"/proc/{pid}/exe")).parent / "jcmd")
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "jcmd")
    found = next((str(c) for c in candidates if os.access(c, os.X_OK)), None)
    return found or shutil.which("jcmd")


def live_heap(pgid: int) -> HeapInfo | None:
    """The job JVM's heap right after a full collection, None when it cannot be asked."""
    pid = jvm_pid(pgid)
    jcmd = jcmd_for(pid) if pid else None
    if jcmd is None:
        return None
    try:
        subprocess.run([jcmd, str(pid), "GC.run"], capture_output=True, timeout=120, check=True)
        info = subprocess.run([jcmd, str(pid), "GC.heap_info"], capture_output=True, text=True,
                              timeout=60, check=True)
        return parse_heap_info(info.stdout)
    except (subprocess.SubprocessError, OSError, ValueError) as err:
        print(f"no heap figures from jcmd: {err}", file=sys.stderr)
        return None


def server_groups(stack) -> dict[str, int]:
    """Kafka's and Cassandra's process groups: each was started in its own session, its
    pid (from its pid file) leading the group."""
    return {srv.name: pid for srv in lifecycle.servers(stack) if (pid := srv.pid())}


def measure(session, keyspace: str, job: subprocess.Popen, servers: Mapping[str, int],
            out: Path, elapsed_s: float, since_ms: float, until_ms: float) -> dict[str, Any]:
    sample: dict[str, Any] = {"elapsed_s": round(elapsed_s, 1)}
    sample.update(interval_summary(progress_rows(session, keyspace), since_ms, until_ms))
    sample["producer_sent"] = producer_count((out / "producer.log").read_text(errors="replace"))
    # RSS before the forced collection, which would change it.
    sample["rss_mib"] = {"job": round(group_mib(job.pid, "VmRSS"), 1),
                         **{name: round(group_mib(pgid, "VmRSS"), 1)
                            for name, pgid in servers.items()}}
    sample["pss_mib"] = {"job": round(group_mib(job.pid, "Pss"), 1)}
    heap = live_heap(job.pid)
    sample["heap_live_mib"] = None if heap is None else round(heap.live_mib, 1)
    sample["heap_old_mib"] = None if heap is None else round(heap.old_mib, 1)
    return sample


def trade_keys(session, keyspace: str) -> Iterator[tuple[int, int]]:
    """(partition, offset) of every trade row: a full scan, paged."""
    from cassandra.query import SimpleStatement

    statement = SimpleStatement(f"SELECT kafka_partition, kafka_offset FROM {keyspace}.trades",
                                fetch_size=5000)
    for row in session.execute(statement, timeout=300):
        yield row.kafka_partition, row.kafka_offset


# --- the run -----------------------------------------------------------------------------------


def halt(proc: subprocess.Popen) -> int:
    """stop(), then SIGKILL for a process group that outlives its SIGTERM: the topic and
    keyspace it uses are dropped next."""
    try:
        return stop(proc)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def wait_running(job: subprocess.Popen, seconds: float, log: Path) -> None:
    """Sleep for `seconds`; a job that exits meanwhile ends the soak."""
    try:
        job.wait(timeout=max(0.0, seconds))
    except subprocess.TimeoutExpired:
        return
    raise SystemExit(f"the job exited early (code {job.returncode}); see {log}")


def watch(args, session, keyspace: str, job: subprocess.Popen, servers: Mapping[str, int],
          out: Path, started: float, started_ms: float) -> list[dict[str, Any]]:
    """One sample every --interval seconds since `started` (monotonic; started_ms the
    same moment by the wall clock, which stream_progress uses), the last at --duration."""
    samples = []
    since_ms = started_ms
    for tick in range(1, math.ceil(args.duration / args.interval) + 1):
        # Due times from the start, so that the time spent measuring does not add up.
        wait_running(job, started + min(tick * args.interval, args.duration) - time.monotonic(),
                     out / "job.log")
        until_ms = time.time() * 1000
        sample = measure(session, keyspace, job, servers, out, time.monotonic() - started,
                         since_ms, until_ms)
        since_ms = until_ms
        samples.append(sample)
        print(interval_line(sample), flush=True)
        with (out / "soak.jsonl").open("a") as jsonl:
            jsonl.write(json.dumps(sample) + "\n")
    return samples


def finish(stack, args, session, keyspace: str, topic: str, producer: subprocess.Popen,
           job: subprocess.Popen, out: Path) -> dict[str, Any]:
    """Let the producer end and the job drain the topic, stop the job, count the trades."""
    if producer.wait(timeout=args.lead + 120) != 0:
        raise SystemExit(f"the producer failed; see {out / 'producer.log'}")
    ends = TopicEnds(stack.kafka_bootstrap, topic)
    begins, finals = ends.beginning_offsets(), ends.end_offsets()
    ends.close()
    if begins is None or finals is None:
        raise SystemExit(f"cannot read the offsets of {topic}")
    held = sum(finals.values()) - sum(begins.values())
    wait_for_records(session, keyspace, held, job, args.timeout, out / "job.log")
    job_exit = stop(job)
    rejected = sum(r.rejected or 0 for r in progress_rows(session, keyspace))
    rows, missing, duplicated = tally(trade_keys(session, keyspace), begins, finals)
    return {"producer_sent": producer_count((out / "producer.log").read_text(errors="replace")),
            "topic_records": held, "rows": rows, "missing_rows": missing,
            "duplicated_rows": duplicated, "rejected": rejected, "job_exit_code": job_exit}


def run(stack, args, out: Path) -> dict[str, Any]:
    servers = server_groups(stack)
    # Every second: the largest memory of each group, as PSS (the target: pages the
    # group's processes share, a forked child's included, count once) and as VmRSS.
    sampler, rss_sampler = RssSampler("Pss"), RssSampler("VmRSS")
    for name, pgid in servers.items():
        sampler.watch(name, pgid)
        rss_sampler.watch(name, pgid)
    topic = fresh_topic(stack)
    try:
        session, keyspace = fresh_keyspace(stack)
    except BaseException:
        drop(stack, topic)
        raise
    procs: list[subprocess.Popen] = []
    try:
        env = environment(stack, topic, keyspace, out)
        started, started_ms = time.monotonic(), time.time() * 1000
        # The later --status-interval wins over producer_cmd's 0: its count for the lines.
        producer = start(producer_cmd(args, "--rate", str(args.rate), "--duration",
                                      str(args.duration), "--status-interval",
                                      str(PRODUCER_STATUS_S)), env, out / "producer.log")
        procs.append(producer)
        time.sleep(args.lead)
        job = start(job_cmd(), env, out / "job.log")
        procs.append(job)
        sampler.watch("job", job.pid)
        rss_sampler.watch("job", job.pid)
        samples = watch(args, session, keyspace, job, servers, out, started, started_ms)
        counts = finish(stack, args, session, keyspace, topic, producer, job, out)
    finally:
        try:
            for proc in reversed(procs):
                halt(proc)
        finally:
            pss_max, rss_max = sampler.stop(), rss_sampler.stop()
            drop(stack, topic, session, keyspace)
    result = summarize(samples, pss_max.get("job", 0.0), args.rss_limit_mib, args.heap_window,
                       counts)
    return {**result, "pss_max_mib": pss_max,
            "pss_max_at_min": {k: round(v / 60, 1) for k, v in sampler.peak_at.items()},
            "pss_max_parts_mib": sampler.peak_parts, "rss_max_mib": rss_max,
            "rss_max_at_min": {k: round(v / 60, 1) for k, v in rss_sampler.peak_at.items()},
            "rss_max_parts_mib": rss_sampler.peak_parts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--duration", type=float, default=3600, help="seconds the producer sends")
    add("--rate", type=float, default=1000, help="trades per second")
    add("--interval", type=float, default=300, help="seconds between two samples")
    add("--symbols", type=int, default=10, help="how many symbols the trades spread over")
    add("--rss-limit-mib", type=float, default=1536, help="the job's RSS must stay below it")
    add("--heap-window", type=float, default=1800,
        help="seconds at the end over which the live heap's growth is measured")
    add("--lead", type=float, default=10, help="seconds the producer runs before the job")
    add("--timeout", type=float, default=600,
        help="seconds the job may take to drain the topic at the end")
    add("--out", type=Path, default=None, help="default: <stack work dir>/bench/soak")
    args = parser.parse_args()
    stack = from_env(os.environ)
    out = args.out or stack.work_dir / "bench" / "soak"
    out.mkdir(parents=True, exist_ok=True)
    # Checkpoints of an earlier soak name a topic that is gone by now.
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    (out / "soak.jsonl").write_text("")
    result = run(stack, args, out)
    result["args"] = {k: str(v) for k, v in vars(args).items()}
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    print_summary(result)
    print(f"wrote {out / 'soak.json'} and {out / 'soak.jsonl'}")
    return 0 if result["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
