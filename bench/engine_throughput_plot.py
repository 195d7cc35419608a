"""The PNG of ``bench.engine_throughput``: per model, output tokens/s against concurrency,
one group of bars per concurrency, one bar per engine (log y), each bar labelled with
its tokens/s and, for the two served engines, its ratio over transformers.

Re-plot a saved result: ``python -m bench.engine_throughput_plot [json] [png]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt

NAMES = {"sglang": "sglang engine", "cpu": "cpu engine", "hf": "transformers generate()"}
ORDER = ("sglang", "cpu", "hf")


def plot(result: dict[str, Any], path: Path) -> None:
    models = list(dict.fromkeys(r["model"] for r in result["results"]))
    engines = [e for e in ORDER if e in result["engines"]]
    fig, axes = plt.subplots(1, len(models), figsize=(7 * len(models), 5.5), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.8 / max(len(engines), 1)
    for ax, model in zip(axes[0], models, strict=True):
        rows = sorted(
            (r for r in result["results"] if r["model"] == model), key=lambda r: r["concurrency"]
        )
        xs = range(len(rows))
        for i, engine in enumerate(engines):
            offsets = [x + (i - (len(engines) - 1) / 2) * width for x in xs]
            values = [r["tokens_per_s"][engine] for r in rows]
            startup = result["startup_s"][model].get(engine)
            label = f"{NAMES[engine]} (start-up {startup:.1f} s)"
            bars = ax.bar(offsets, values, width, label=label, color=colors[i % len(colors)])
            for bar, row in zip(bars, rows, strict=True):
                text = f"{row['tokens_per_s'][engine]:.0f}"
                ratio = row.get("ratio_over_transformers", {}).get(engine)
                if ratio is not None:
                    text += f"\n{ratio:.2f}x"
                ax.annotate(
                    text,
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        ax.set_yscale("log")
        ax.set_xticks(list(xs), [str(r["concurrency"]) for r in rows])
        ax.set_xlabel("concurrent requests (transformers: batch size)")
        ax.set_ylabel("output tokens/s (log)")
        ax.set_title(result["models"].get(model, model), fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        ax.margins(y=0.2)
    machine = result["machine"]
    fig.suptitle(
        f"Engine throughput, {result['new_tokens_per_request']} new tokens per request, "
        f"greedy, best of {result['repeats']} ({machine['cpus']} CPUs, "
        f"sglang {machine['versions']['sglang']}, torch {machine['versions']['torch']}"
        + "".join(f", {k}={v}" for k, v in machine.get("omp_env", {}).items() if v)
        + ")",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/engine_throughput.json")
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else src.with_suffix(".png")
    plot(json.loads(src.read_text()), dst)
    print(f"wrote {dst}")
