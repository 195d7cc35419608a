"""The chaos benchmark's plot: per kill, this server against plain SGLang
(``bench/results/chaos.json`` -> ``.png``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TIMES = [
    ("kill_to_in_flight_ended_s", "kill -> in-flight\nrequests answered"),
    ("kill_to_exit_s", "kill -> exit"),
    ("restart_to_ready_s", "restart -> ready"),
]
COUNTS = [
    ("in_flight_at_kill", "in flight\nat the kill"),
    ("lost_in_flight", "lost: in flight"),
    ("lost_not_in_flight", "lost: not in flight"),
    ("orphaned_processes", "orphaned\nprocesses"),
]


def _bars(axis: Any, results: list[dict[str, Any]], metrics: list[tuple[str, str]]) -> None:
    width = 0.8 / len(results)
    for i, result in enumerate(results):
        means = result["mean_per_kill"]
        values = [means.get(key) or 0.0 for key, _ in metrics]
        xs = [j + i * width for j in range(len(metrics))]
        axis.bar(xs, values, width, label=result["server"])
        for x, value in zip(xs, values, strict=True):
            axis.annotate(f"{value:g}", (x, value), ha="center", va="bottom", fontsize=7)
    axis.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], [m[1] for m in metrics])
    axis.tick_params(axis="x", labelsize=8)
    axis.legend(fontsize=8)


def plot(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    _bars(axes[0], report["results"], TIMES)
    axes[0].set_ylabel("seconds (mean per kill)")
    axes[0].set_title("scheduler SIGKILLed under load: times")
    _bars(axes[1], report["results"], COUNTS)
    axes[1].set_ylabel("requests (mean per kill)")
    axes[1].set_title(
        f"{report['concurrency']} streams, {report['kills']} kills, restart loop: requests"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/chaos.json")
    plot(json.loads(path.read_text()), path.with_suffix(".png"))
