"""Shared helpers of the metrics tests: free ports, and scraping a Prometheus endpoint."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

SCRAPE_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Scrape:
    """The samples of one scrape, by name and labels."""

    text: str
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float]
    types: Mapping[str, str]

    def value(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"no sample {name}{labels} in:\n{self.text[:3000]}"
        return self.samples[key]

    def by_label(self, name: str, label: str) -> dict[str, float]:
        return {dict(labels)[label]: value for (sample, labels), value in self.samples.items()
                if sample == name}

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
        assert response.status == 200, url
        text = response.read().decode("utf-8")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(text, samples, types)


def scrape_until(url: str, condition: Callable[[Scrape], bool], process: subprocess.Popen,
                 describe: Callable[[], str], timeout_s: float = 180.0) -> Scrape:
    """Scrape until `condition` holds; the process must stay alive meanwhile.

    The endpoint may not be up yet at first: a refused connection is retried.
    """
    deadline = time.monotonic() + timeout_s
    last: Scrape | None = None
    while True:
        assert process.poll() is None, f"the process ended (exit {process.returncode}):\n" \
                                       f"{describe()}"
        try:
            last = scrape(url)
            if condition(last):
                return last
        except (urllib.error.URLError, ConnectionError):
            pass
        assert time.monotonic() < deadline, (
            f"condition not met at {url} within {timeout_s:g} s; last scrape:\n"
            f"{last.text[:3000] if last else '(none)'}\n{describe()}")
        time.sleep(0.2)
