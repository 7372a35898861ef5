"""Read values off a Prometheus /metrics page, as a scraper would parse it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]


def samples(text: str, name: str) -> dict[Labels, float]:
    """Every sample called `name` (with its _total/_count suffix, as exposed), by its sorted label pairs."""
    found: dict[Labels, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found[tuple(sorted(s.labels.items()))] = float(s.value)
    return found


def sample(text: str, name: str, **labels: str) -> float:
    """The first sample called `name` carrying these labels (others may differ); 0 when there is none yet, as
    for a counter no event has touched."""
    for key, value in samples(text, name).items():
        if labels.items() <= dict(key).items():
            return value
    return 0.0
