"""One PNG per sweep: latency and throughput against concurrency, per workload, and the
server-over-engine ratios.

Panels: TTFT p50, TPOT p50, ITL and end-to-end latency p50 (solid) and p99 (dotted),
output tokens/s;
one line per workload, dashed when reasoning is off. The last panel (when the engine
baseline ran) shows HTTP / engine ratios at each measured concurrency: 1.0 means the
server adds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt


def _series(rows: list[dict[str, Any]], key: str, stat: str | None) -> list[float | None]:
    out: list[float | None] = []
    for row in rows:
        value = row.get(key)
        if stat is not None:
            value = value.get(stat) if isinstance(value, dict) else None
        out.append(value)
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    rows = [r for r in result["results"] if r["stream"]] or result["results"]
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["workload"], row["reasoning"]), []).append(row)
    overhead = result.get("overhead") or []
    panels = [
        ("ttft_ms", "p50", "TTFT p50 (ms)"),
        ("tpot_ms", "p50", "TPOT p50 (ms/token)"),
        ("itl_ms", "p50", "inter-token latency (ms): p50 solid, p99 dotted"),
        ("e2e_ms", "p50", "end-to-end latency (ms): p50 solid, p99 dotted"),
        ("output_token_throughput", None, "output tokens/s"),
    ]
    fig, grid = plt.subplots(2, 3, figsize=(18, 10))
    axes = list(grid.flat)
    if not overhead:
        axes[-1].axis("off")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    workloads = sorted({w for w, _ in groups})
    for ax, (key, stat, title) in zip(axes, panels, strict=False):
        for (workload, reasoning), group in sorted(groups.items()):
            group = sorted(group, key=lambda r: r["concurrency"])
            xs = [r["concurrency"] for r in group]
            color = colors[workloads.index(workload) % len(colors)]
            style = "-" if reasoning else "--"
            label = f"{workload}, reasoning {'on' if reasoning else 'off'}"
            ax.plot(xs, _series(group, key, stat), style, marker="o", color=color, label=label)
            if key in ("e2e_ms", "itl_ms"):
                ax.plot(xs, _series(group, key, "p99"), ":", marker=".", color=color)
        levels = sorted({r["concurrency"] for r in rows})
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_xlabel("concurrency (requests in flight)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    if overhead:
        _plot_overhead(axes[-1], overhead)
    target = result["target"]
    fig.suptitle(
        f"{target['model']} at {target['base_url']} ({target['server']}); "
        f"max_tokens {result['config']['max_tokens']}, streamed",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_overhead(ax: Any, overhead: list[dict[str, Any]]) -> None:
    """Grouped bars: HTTP / engine for e2e p50 and TTFT p50, per concurrency and mode."""
    labels = [f"c={o['concurrency']}\n{'stream' if o['stream'] else 'whole'}" for o in overhead]
    metrics = [
        ("e2e_p50", "e2e p50"),
        ("ttft_p50", "TTFT p50"),
        ("throughput", "engine/HTTP tok/s"),
    ]
    width = 0.8 / len(metrics)
    for i, (key, name) in enumerate(metrics):
        values = [o["ratios"].get(key) or 0 for o in overhead]
        xs = [x + i * width for x in range(len(overhead))]
        ax.bar(xs, values, width, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([x + width for x in range(len(overhead))], labels, fontsize=8)
    ax.set_title("server / engine alone (1.0 = no overhead)", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
