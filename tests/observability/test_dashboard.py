"""The shipped Grafana dashboard queries only series the relay exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tenancy.relay.metrics import RelayMetrics

DASHBOARD = Path(__file__).parents[2] / "examples" / "grafana" / "relay-dashboard.json"


def _exported() -> set[str]:
    names: set[str] = set()
    for family in RelayMetrics().registry.collect():
        names.update(sample.name for sample in family.samples)
    return names


def test_every_series_the_dashboard_queries_is_one_the_relay_exports() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queried = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"\b(tenancy_[a-z_]+)\b", target["expr"])
    }

    assert queried
    assert queried <= _exported()


def test_the_dashboard_shows_backlog_lag_and_dead_letters() -> None:
    titles = " ".join(p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]).lower()

    assert all(word in titles for word in ("backlog", "lag", "dead letters", "published"))
