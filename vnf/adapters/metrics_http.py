"""Prometheus exposition: one /metrics endpoint per process on its management address.

Library code builds metrics against an injected :class:`CollectorRegistry`; per-frame counts
stay plain integers in the engines and are read by a custom collector at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Snapshot = Callable[[], Iterable[Metric]]


class CallbackCollector(Collector):
    """Adapts a function returning metric families into a registry collector."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from self.snapshot()


def counter_families(
    prefix: str,
    counts: dict[tuple[str, str], int],
    labels: dict[str, str],
    help_text: dict[str, str],
    const_labels: dict[str, str],
) -> list[Metric]:
    """``{(name, label value): n}`` → one counter family per name (``<prefix>_<name>_total``).

    ``labels[name]`` is the label key for that counter's value (absent: unlabelled).
    """
    families: dict[str, CounterMetricFamily] = {}
    keys = sorted(const_labels)
    for (name, value), n in sorted(counts.items()):
        label = labels.get(name)
        family = families.get(name)
        if family is None:
            family = CounterMetricFamily(
                f"{prefix}_{name}",
                help_text.get(name, name.replace("_", " ")),
                labels=[*keys, label] if label else keys,
            )
            families[name] = family
        values = [const_labels[k] for k in keys]
        family.add_metric([*values, value] if label else values, n)
    return list(families.values())


def gauge(name: str, help_text: str, value: float, labels: dict[str, str] | None = None) -> Metric:
    return gauges(name, help_text, [(labels or {}, value)])


def gauges(name: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> Metric:
    """One gauge family with a sample per label set (all label sets have the same keys)."""
    family: GaugeMetricFamily | None = None
    keys: list[str] = []
    for labels, value in samples:
        if family is None:
            keys = sorted(labels)
            family = GaugeMetricFamily(name, help_text, labels=keys)
        family.add_metric([labels[k] for k in keys], value)
    return family if family is not None else GaugeMetricFamily(name, help_text)


def serve(registry: CollectorRegistry, host: str, port: int) -> None:
    """Start the /metrics HTTP server in a daemon thread."""
    start_http_server(port, addr=host, registry=registry)
