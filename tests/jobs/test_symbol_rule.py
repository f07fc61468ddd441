"""The job's symbol rule is the producer's: contract.validation, as a Spark column."""

from __future__ import annotations

import random

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contract.validation import symbol_problem
from jobs.transforms import valid_symbol

pytestmark = pytest.mark.spark

# (symbol, is it one?) decided by reading the rule, not by running it.
CASES = [
    ("AAPL", True),
    ("BINANCE:BTCUSDT", True),
    ("OANDA:EUR_USD", True),
    ("BRK B", True),  # a blank inside is printable
    ("中文", True),
    ("\U0001f680X", True),
    ("é" * 64, True),
    ("S" * 64, True),
    ("S" * 65, False),
    ("", False),
    (" ", False),
    (" AAPL ", False),
    ("AAPL ", False),
    ("AAPL\n", False),
    ("A\x00B", False),
    ("A\tB", False),
    ("\x7fX", False),
    ("X\x85", False),  # C1 control
    ("\u00a0X", False),  # no-break space
    ("X\u200b", False),  # zero-width space (format)
    ("A\u2028B", False),  # line separator
    ("\ufeffAAPL", False),  # byte-order mark
    ("A\ue000", False),  # private use
    ("A\u3000B", False),  # ideographic space
]


def test_the_job_and_the_contract_agree_with_the_rule(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(s,) for s, _ in CASES] + [(None,)], "symbol string")
    verdicts = {row["symbol"]: row["ok"] for row in
                frame.select("symbol", valid_symbol(F.col("symbol")).alias("ok")).collect()}
    expected = dict(CASES)
    assert verdicts == {**expected, None: False}
    assert {s: symbol_problem(s) is None for s, _ in CASES} == expected


ALPHABET = ("A", "z", "0", ":", "_", "-", ".", " ", "\t", "\n", "\r", "\x00", "\x7f", "\x85",
            "\u00a0", "\u200b", "\u2028", "\u2029", "\ufeff", "\ue000", "é", "中", "\U0001f680")


def test_the_job_agrees_with_the_contract_on_drawn_symbols(spark: SparkSession) -> None:
    # One DataFrame of many drawn strings: a Spark job per hypothesis example would
    # take minutes. Seeded, so a failure names the same strings on every run.
    draw = random.Random(20261202)
    symbols = ["".join(draw.choices(ALPHABET, k=draw.randint(0, 70))) for _ in range(400)]
    symbols += ["".join(draw.choices(ALPHABET[:6], k=n)) for n in (1, 63, 64, 65)]
    frame = spark.createDataFrame([(s,) for s in symbols], "symbol string")
    job = {row["symbol"]: row["ok"] for row in
           frame.select("symbol", valid_symbol(F.col("symbol")).alias("ok")).collect()}
    assert job == {s: symbol_problem(s) is None for s in symbols}
    assert 0 < sum(job.values()) < len(job), "the draw should hold symbols of both kinds"
