"""The side-by-side plot of ``bench/serve.py``: per cell (bench_serving backend at a
concurrency) one bar per server for output throughput, median TTFT and median ITL, and a
last panel with each of our servers' ratios to ``sglang.launch_server`` (throughput: 1.0
is parity, the dashed line the 0.95 goal)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt

PANELS = (
    ("output_throughput", "output tokens/s"),
    ("median_ttft_ms", "median TTFT (ms)"),
    ("median_itl_ms", "median ITL (ms)"),
)


def plot(result: dict[str, Any], path: Path) -> None:
    rows = result["results"]
    cells = sorted({(r["backend"], r["concurrency"]) for r in rows})
    servers = list(dict.fromkeys(r["server"] for r in rows))
    at = {(r["server"], r["backend"], r["concurrency"]): r for r in rows}
    labels = [f"{b}\nc={c}" for b, c in cells]
    width = 0.8 / max(len(servers), 1)
    fig, axes = plt.subplots(1, len(PANELS) + 1, figsize=(5 * (len(PANELS) + 1), 4.5))
    for ax, (key, title) in zip(axes, PANELS, strict=False):
        for i, server in enumerate(servers):
            values = [(at.get((server, *cell)) or {}).get(key) or 0 for cell in cells]
            xs = [x + (i - (len(servers) - 1) / 2) * width for x in range(len(cells))]
            ax.bar(xs, values, width, label=server)
        ax.set_xticks(range(len(cells)), labels, fontsize=8)
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    ours = [s for s in servers if any("vs_sglang" in (at.get((s, *c)) or {}) for c in cells)]
    ax = axes[-1]
    for i, server in enumerate(ours):
        for j, (metric, hatch) in enumerate((("output_throughput", ""), ("median_itl", "//"))):
            values = [
                ((at.get((server, *cell)) or {}).get("vs_sglang") or {}).get(metric) or 0
                for cell in cells
            ]
            bar = 0.8 / (2 * len(ours))
            offset = (2 * i + j - (2 * len(ours) - 1) / 2) * bar
            xs = [x + offset for x in range(len(cells))]
            ax.bar(xs, values, bar, hatch=hatch, label=f"{server} {metric}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(0.95, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xticks(range(len(cells)), labels, fontsize=8)
    ax.set_title("ours / sglang.launch_server")
    ax.legend(fontsize=7)
    fig.suptitle("sglang.bench_serving: SGLang's server vs ours (same model, same SGLang flags)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
