"""The Prometheus and Grafana files in deploy/ name only metrics the services define, and
scrape the ports ``make run`` gives them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from tests.support.paths import ROOT
from vcs_shared import metrics
from vcs_tools.devstack import METRICS_PORTS

pytestmark = pytest.mark.unit

DEPLOY = ROOT / "deploy"
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def defined() -> set[str]:
    """Names the services register: ours (vcs_shared.metrics) and the HTTP instrumentator's."""
    assert metrics.MESSAGES  # imported: registered in this process's default registry
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
    return names | {"http_requests", "http_request_duration_seconds"}


def referenced(text: str) -> set[str]:
    used = set(re.findall(r"\b(vcs_[a-z_]+|http_requests?_[a-z_]+)\b", text))
    return {next((n[: -len(s)] for s in SUFFIXES if n.endswith(s)), n) for n in used}


def dashboard_queries() -> str:
    dashboard = json.loads((DEPLOY / "grafana" / "dopa-vcs.json").read_text())
    return "\n".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])


def test_alerts_and_the_dashboard_use_only_defined_metrics() -> None:
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    rules = [rule for group in alerts["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {"VcsOutboxBacklog", "VcsDeadLetters", "VcsStuckRequests"} <= names
    used = referenced("\n".join(rule["expr"] for rule in rules)) | referenced(dashboard_queries())
    assert used, "no metric referenced"
    assert used <= defined(), used - defined()


def test_prometheus_scrapes_each_service_where_make_run_serves_it() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target["labels"]["service"]: int(address.rsplit(":", 1)[1])
        for job in config["scrape_configs"]
        for target in job["static_configs"]
        for address in target["targets"]
    }
    assert targets == METRICS_PORTS
    assert Path(DEPLOY / "prometheus" / config["rule_files"][0]).exists()
