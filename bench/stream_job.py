"""Stream job benchmark: drain throughput beside the sink's ceiling, latency under load.

    python -m bench.stream_job [--runs 3] [--drain-count 300000] [--symbols 10]
                               [--rate 1000] [--duration 90] [--warmup 30] [--out .work/bench]

Each run, on the running local stack, with a fresh topic and keyspace per part:
1. drain: the synthetic producer writes twice --drain-count trades over --symbols (10),
   then `python -m jobs.stream_processor --available-now --max-offsets-per-trigger
   <drain-count>` drains them: its first micro-batch on a cold JVM (trades/s of the
   batch, from `stream_progress`, and by wall clock from the launch), the rest on a
   warm one. Then a Spark session reads the same records, decodes and caches the
   valid trades in two halves (even and odd offsets), and times only the Spark
   Cassandra Connector writing them into a fresh `trades` table: the first half on
   its cold write path, the second on a warm one. Those are the ceilings the job's
   cold and warm rates are compared with. Last, the floor (bench.floor_job): a stream
   job that only reads, decodes and writes the trades drains the same records, cold
   then warm, as the job did; what it reaches of the ceiling bounds what the job can.
2. latency: the producer sends --rate trades/s; the job starts cold 10 s later, with
   that backlog waiting. Trade latency is producer ingest_ts -> WRITETIME of the trade
   row; window latency is ingest_ts -> the end of the micro-batch that wrote the
   trade's minute and moving-mean windows, its candles at every resolution, its
   ticker and its symbol row (one write at the batch's end; its `stream_progress`
   row). Both over the trades ingested after --warmup seconds. Catch-up is the time
   from launching the job to the end of its first batch whose trades all arrived
   within 1 s.
Peak RSS (VmHWM) of the producer and of the job's processes (Python driver, JVM) is
sampled every second. Prints a table, writes results.json and stream_job.png (latency
CDF, trades per second written over time) under --out. Timings are reported, never
asserted: `make test` runs a seconds-long smoke run of this harness.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from bisect import bisect_left
from dataclasses import asdict, dataclass, field
from datetime import timezone
from pathlib import Path

from bench.common import group_pids, percentile, process_name, status_kib
from jobs.kafka_lag import TopicEnds
from stack import class_archive
from stack.config import from_env
from stack.scratch import drop, fresh_keyspace, fresh_topic

SYMBOLS = ",".join(["BINANCE:BTCUSDT", "BINANCE:ETHUSDT", "BINANCE:SOLUSDT", "AAPL", "MSFT",
                    "AMZN", "GOOGL", "NVDA", "TSLA", "META"])


@dataclass
class RunResult:
    drain_trades: int = 0
    drain_job_rate: float = 0.0
    drain_job_wall_rate: float = 0.0
    sink_ceiling_rate: float = 0.0
    ratio: float = 0.0
    drain_job_warm_rate: float = 0.0
    sink_ceiling_warm_rate: float = 0.0
    warm_ratio: float = 0.0
    floor_records: int = 0
    floor_rate: float = 0.0
    floor_ratio: float = 0.0
    floor_warm_rate: float = 0.0
    floor_warm_ratio: float = 0.0
    job_floor: float = 0.0
    job_floor_warm: float = 0.0
    driver_share: float = 0.0
    latency_trades: int = 0
    trade_p50_ms: float = 0.0
    trade_p99_ms: float = 0.0
    window_p99_ms: float = 0.0
    catch_up_s: float = 0.0
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    trade_latencies: list[float] = field(default_factory=list, repr=False)
    throughput: list[tuple[float, float]] = field(default_factory=list, repr=False)


# --- processes ----------------------------------------------------------------------------


class RssSampler:
    """Per label, the peak of a /proc status size summed over the processes of a watched
    process group: VmHWM (each process's own peak) unless told otherwise. With each
    peak, when it happened (seconds since the sampler started) and how it split over
    the group's processes (command name and MiB), to tell a spike's cause."""

    def __init__(self, field: str = "VmHWM") -> None:
        self.field = field
        self.groups: dict[str, int] = {}
        self.peak: dict[str, float] = {}
        self.peak_at: dict[str, float] = {}
        self.peak_parts: dict[str, list[tuple[str, float]]] = {}
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def watch(self, label: str, pgid: int) -> None:
        self.groups[label] = pgid

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def sample(self) -> None:
        for label, pgid in list(self.groups.items()):
            parts = [(process_name(pid), status_kib(pid, self.field) / 1024)
                     for pid in group_pids(pgid)]
            total = sum(mib for _, mib in parts)
            if total > self.peak.get(label, 0.0):
                self.peak[label] = total
                self.peak_at[label] = round(time.monotonic() - self._started, 1)
                self.peak_parts[label] = sorted(((n, round(m, 1)) for n, m in parts if m),
                                                key=lambda part: -part[1])

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {k: round(v, 1) for k, v in self.peak.items()}


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, stdin=subprocess.DEVNULL)


def stop(proc: subprocess.Popen, timeout: float = 120) -> int:
    """SIGTERM to the program alone, as `make run`'s supervisor does: the stream job
    then stops its query and its JVM in order (a JVM signalled too would be gone
    before the driver stops it, and the job would exit 1)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def job_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "jobs.stream_processor", *extra]


def symbol_list(count: int) -> str:
    """The ten usual symbols, then made-up ones up to `count` (how cost grows)."""
    names = SYMBOLS.split(",")
    return ",".join([*names[:count], *(f"SYN:S{i:04d}" for i in range(count - len(names)))])


def producer_cmd(args: argparse.Namespace, *extra: str) -> list[str]:
    return [sys.executable, "-m", "producer", "synthetic", "--symbols",
            symbol_list(args.symbols), "--status-interval", "0", *extra]


def environment(stack, topic: str, keyspace: str, work: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "JAVA_HOME", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(KAFKA_BOOTSTRAP_SERVERS=stack.kafka_bootstrap, KAFKA_TOPIC=topic,
               KAFKA_DEAD_LETTER_TOPIC=stack.dead_letter_topic, CASSANDRA_KEYSPACE=keyspace,
               CASSANDRA_HOST=stack.host, CASSANDRA_PORT=str(stack.cassandra_port),
               STREAM_CHECKPOINT_ROOT=str(work / "checkpoints"),
               SPARK_JARS_DIR=str(stack.jars_dir),
               SPARK_CLASS_ARCHIVE=str(class_archive.archive_path(stack)))
    return env


# --- reading results -----------------------------------------------------------------------


def progress_rows(session, keyspace: str) -> list:
    rows = session.execute(
        f"SELECT finished_at, started_at, trades_written_at, records, trades,"
        f" rejected, trade_latency_p99_ms, kafka_lag_records"
        f" FROM {keyspace}.stream_progress", timeout=120)
    return sorted(rows, key=lambda r: r.finished_at)


def epoch_ms(ts) -> float:
    return ts.replace(tzinfo=timezone.utc).timestamp() * 1000


# --- the two parts ---------------------------------------------------------------------------


def drain(stack, args, work: Path, result: RunResult, sampler: RssSampler) -> None:
    topic = fresh_topic(stack)
    session, keyspace = fresh_keyspace(stack)
    env = environment(stack, topic, keyspace, work / "drain")
    subprocess.run(producer_cmd(args, "--count", str(2 * args.drain_count), "--rate", "0",
                                "--seed", "7"), env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    launched_ms = time.time() * 1000
    job = start(job_cmd("--available-now", "--max-offsets-per-trigger", str(args.drain_count)),
                env, work / "drain-job.log")
    sampler.watch("job (drain)", job.pid)
    if job.wait(timeout=args.timeout) != 0:
        raise SystemExit(f"the job failed; see {work / 'drain-job.log'}")
    first, *rest = progress_rows(session, keyspace)
    warm_trades = sum(r.trades for r in rest)
    result.drain_trades = first.trades + warm_trades
    result.drain_job_rate = first.trades / busy_s([first])
    result.drain_job_wall_rate = first.trades / ((epoch_ms(first.finished_at) - launched_ms)
                                                 / 1000)
    result.drain_job_warm_rate = warm_trades / busy_s(rest) if rest else float("nan")
    result.sink_ceiling_rate, result.sink_ceiling_warm_rate = rates_of(
        "bench.sink_ceiling", [topic], work / "sink-ceiling.log")
    result.floor_rate, result.floor_warm_rate, floor_records = rates_of(
        "bench.floor_job", [topic, str(args.drain_count)], work / "floor-job.log")
    result.floor_records = int(floor_records)
    result.ratio = result.drain_job_rate / result.sink_ceiling_rate
    result.warm_ratio = result.drain_job_warm_rate / result.sink_ceiling_warm_rate
    result.floor_ratio = result.floor_rate / result.sink_ceiling_rate
    result.floor_warm_ratio = result.floor_warm_rate / result.sink_ceiling_warm_rate
    result.job_floor = result.drain_job_rate / result.floor_rate
    result.job_floor_warm = result.drain_job_warm_rate / result.floor_warm_rate
    result.driver_share = driver_share([first, *rest])
    drop(stack, topic, session, keyspace)


def driver_share(batches: list) -> float:
    """The share of the batches' time after their trades were written: the driver
    merging panes and candle parts and writing what they changed (the parts' Spark
    job runs beside the trades write, so what remains after it is the driver's)."""
    after = sum(epoch_ms(r.finished_at) - epoch_ms(r.trades_written_at) for r in batches)
    return after / 1000 / busy_s(batches)


def busy_s(batches: list) -> float:
    """Seconds the job spent in these micro-batches."""
    return sum(epoch_ms(r.finished_at) - epoch_ms(r.started_at) for r in batches) / 1000


def rates_of(module: str, args: list[str], log: Path) -> tuple[float, ...]:
    """The numbers a measuring module prints on its last line, its cold and warm rates
    first (bench.sink_ceiling: the connector alone; bench.floor_job: read, decode and
    write, then the records it drained)."""
    proc = subprocess.run([sys.executable, "-m", module, *args],
                          capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{module} failed; see {log}")
    return tuple(float(word) for word in proc.stdout.strip().splitlines()[-1].split())


def latency(stack, args, work: Path, result: RunResult, sampler: RssSampler) -> None:
    topic = fresh_topic(stack)
    session, keyspace = fresh_keyspace(stack)
    env = environment(stack, topic, keyspace, work / "latency")
    producer = start(producer_cmd(args, "--rate", str(args.rate),
                                  "--duration", str(args.duration + args.lead)),
                     env, work / "producer.log")
    sampler.watch("producer", producer.pid)
    time.sleep(args.lead)  # the backlog a cold start must catch up with
    launched_ms = time.time() * 1000
    job = start(job_cmd(), env, work / "latency-job.log")
    sampler.watch("job (latency)", job.pid)
    try:
        if producer.wait(timeout=args.duration + args.lead + 120) != 0:
            raise SystemExit(f"the producer failed; see {work / 'producer.log'}")
        ends = TopicEnds(stack.kafka_bootstrap, topic)
        offsets = ends.end_offsets()
        ends.close()
        if offsets is None:
            raise SystemExit(f"cannot read the end offsets of {topic}")
        wait_for_records(session, keyspace, sum(offsets.values()), job, args.timeout,
                         work / "latency-job.log")
    finally:
        sampler.sample()
        stop(job)
    batches = progress_rows(session, keyspace)
    measure_latency(session, keyspace, batches, launched_ms + args.warmup * 1000, result)
    caught_up = next((r for r in batches if (r.trade_latency_p99_ms or 1e9) <= 1000), None)
    result.catch_up_s = ((epoch_ms(caught_up.finished_at) - launched_ms) / 1000
                         if caught_up else float("nan"))
    result.throughput = [((epoch_ms(r.finished_at) - launched_ms) / 1000,
                          r.trades / max(0.001, (epoch_ms(r.finished_at)
                                                 - epoch_ms(r.started_at)) / 1000))
                         for r in batches]
    drop(stack, topic, session, keyspace)


def wait_for_records(session, keyspace: str, records: int, job: subprocess.Popen,
                     timeout: float, log: Path) -> None:
    """Until the job's batches hold `records` records. The job has written the last
    trades then (no batch runs after that: there is nothing left to read)."""
    deadline = time.monotonic() + timeout
    while sum(r.records for r in progress_rows(session, keyspace)) < records:
        if job.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the job did not catch up; see {log}")
        time.sleep(1)


def measure_latency(session, keyspace: str, batches: list, since_ms: float,
                    result: RunResult) -> None:
    """Per trade: ingest -> its row, and ingest -> the end of the batch that wrote it."""
    written = [epoch_ms(r.trades_written_at) for r in batches]
    ends = [epoch_ms(r.finished_at) for r in batches]
    trade_ms, window_ms = [], []
    rows = session.execute(
        f"SELECT ingest_ts, writetime(price) AS written FROM {keyspace}.trades", timeout=300)
    for row in rows:
        ingest = epoch_ms(row.ingest_ts)
        if ingest < since_ms:
            continue
        row_ms = row.written / 1000
        # Batches run one after another: a trade row belongs to the first batch whose
        # trade writes ended at or after it was written.
        batch = min(bisect_left(written, row_ms - 1), len(ends) - 1)
        trade_ms.append(row_ms - ingest)
        window_ms.append(ends[batch] - ingest)
    trade_ms.sort()
    window_ms.sort()
    result.latency_trades = len(trade_ms)
    result.trade_p50_ms = percentile(trade_ms, 0.5)
    result.trade_p99_ms = percentile(trade_ms, 0.99)
    result.window_p99_ms = percentile(window_ms, 0.99)
    result.trade_latencies = trade_ms


# --- report ------------------------------------------------------------------------------------

COLUMNS = (
    ("drain_job_rate", "job drain, trades/s", "{:,.0f}"),
    ("drain_job_wall_rate", "job drain incl. start-up", "{:,.0f}"),
    ("sink_ceiling_rate", "connector ceiling, trades/s", "{:,.0f}"),
    ("ratio", "job / ceiling", "{:.0%}"),
    ("drain_job_warm_rate", "job drain, warm JVM", "{:,.0f}"),
    ("sink_ceiling_warm_rate", "connector ceiling, warm", "{:,.0f}"),
    ("warm_ratio", "job / ceiling, warm", "{:.0%}"),
    ("floor_rate", "floor: read, decode, write", "{:,.0f}"),
    ("floor_ratio", "floor / ceiling", "{:.0%}"),
    ("floor_warm_rate", "floor, warm JVM", "{:,.0f}"),
    ("floor_warm_ratio", "floor / ceiling, warm", "{:.0%}"),
    ("job_floor", "job / floor", "{:.2f}x"),
    ("job_floor_warm", "job / floor, warm", "{:.2f}x"),
    ("driver_share", "driver's share of the drain", "{:.0%}"),
    ("trade_p50_ms", "trade row p50 ms", "{:,.0f}"),
    ("trade_p99_ms", "trade row p99 ms", "{:,.0f}"),
    ("window_p99_ms", "windows p99 ms", "{:,.0f}"),
    ("catch_up_s", "cold catch-up s", "{:.1f}"),
)


def summary(results: list[RunResult]) -> dict[str, dict[str, float]]:
    out = {}
    for name, _, _ in COLUMNS:
        values = [getattr(r, name) for r in results]
        out[name] = {"median": statistics.median(values), "min": min(values),
                     "max": max(values)}
    return out


def print_table(results: list[RunResult]) -> None:
    print("| measure | " + " | ".join(f"run {n}" for n in range(1, len(results) + 1))
          + " | median | spread |")
    print("|---" * (len(results) + 3) + "|")
    for name, label, fmt in COLUMNS:
        values = [getattr(r, name) for r in results]
        cells = [fmt.format(v) for v in values]
        spread = fmt.format(max(values) - min(values))
        print(f"| {label} | " + " | ".join(cells)
              + f" | {fmt.format(statistics.median(values))} | {spread} |")
    for label in results[0].peak_rss_mib:
        peaks = [r.peak_rss_mib.get(label, 0.0) for r in results]
        print(f"peak RSS {label}: {max(peaks):.0f} MiB (max over runs)")


def chart(results: list[RunResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cdf, rate) = plt.subplots(1, 2, figsize=(10, 3.6))
    for n, r in enumerate(results, 1):
        values = r.trade_latencies
        if values:
            cdf.plot(values, [i / len(values) for i in range(len(values))], label=f"run {n}")
        if r.throughput:
            rate.plot(*zip(*r.throughput, strict=True), marker=".", label=f"run {n}")
    cdf.set(xlabel="ingest -> trade row (ms)", ylabel="fraction of trades",
            title="Trade latency CDF")
    rate.set(xlabel="seconds since the job was launched", ylabel="trades/s in a batch",
             title="Throughput per micro-batch")
    for ax in (cdf, rate):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--runs", type=int, default=3)
    add("--drain-count", type=int, default=300_000)
    add("--symbols", type=int, default=10, help="how many symbols the trades spread over")
    add("--rate", type=float, default=1000)
    add("--duration", type=float, default=90)
    add("--warmup", type=float, default=30)
    add("--lead", type=float, default=10, help="seconds the producer runs before the job")
    add("--timeout", type=float, default=600)
    add("--out", type=Path, default=None)
    args = parser.parse_args()
    stack = from_env(os.environ)
    out = args.out or stack.work_dir / "bench"
    results = []
    for run in range(1, args.runs + 1):
        work = out / f"run-{run}"
        # Checkpoints of an earlier benchmark name topics that are gone by now.
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        sampler = RssSampler()
        result = RunResult()
        try:
            drain(stack, args, work, result, sampler)
            latency(stack, args, work, result, sampler)
        finally:
            result.peak_rss_mib = sampler.stop()
        results.append(result)
        print(f"run {run}: " + ", ".join(f"{label} {fmt.format(getattr(result, name))}"
                                         for name, label, fmt in COLUMNS), flush=True)
    print_table(results)
    document = {"args": {k: str(v) for k, v in vars(args).items()},
                "summary": summary(results),
                "runs": [{k: v for k, v in asdict(r).items()
                          if k not in ("trade_latencies", "throughput")} for r in results]}
    (out / "results.json").write_text(json.dumps(document, indent=2))
    chart(results, out / "stream_job.png")
    print(f"wrote {out / 'results.json'} and {out / 'stream_job.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
