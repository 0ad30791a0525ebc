"""``--plot``: completions and latency over time, per stage, for each measured run (matplotlib,
written as SVG so it stays sharp and diffs as text)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen here: render to a file
import matplotlib.pyplot as plt

from vcs_tools.bench.report import Scenario

LABELS = {
    "request.submitted": "intake: request.submitted",
    "room.assigned": "allocator: room.assigned",
    "credentials.delivered": "notifier: credentials.delivered",
}


def plot(scenarios: Sequence[Scenario], path: Path) -> Path:
    """One column per run: requests past each stage over time (top), and each delivered
    request's submit-to-delivered latency at the moment it was delivered (bottom)."""
    columns = max(len(scenarios), 1)
    figure, axes = plt.subplots(2, columns, figsize=(6 * columns, 7), squeeze=False)
    for column, scenario in enumerate(scenarios):
        top, bottom = axes[0][column], axes[1][column]
        for stage, times in scenario.run.timeline.items():
            top.step(times, range(1, len(times) + 1), where="post", label=LABELS.get(stage, stage))
        top.set_title(scenario.label)
        top.set_xlabel("seconds from the start")
        top.set_ylabel("requests past the stage")
        top.legend(fontsize="small")
        if scenario.run.latency_points:
            at, ms = zip(*scenario.run.latency_points, strict=True)
            bottom.plot(at, ms, ".", markersize=3)
        bottom.set_xlabel("seconds from the start (when delivered)")
        bottom.set_ylabel("submit → delivered, ms")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
