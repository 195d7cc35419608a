"""The grammar benchmark's plot: compile time (uncached, cached) and per-token mask time,
ours beside SGLang's own tool-call constraint, per tool_choice mode
(``bench/results/grammar.json`` -> ``.png``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PANELS = [
    ("build_ms", "ms", "tag built in Python"),
    ("compile_uncached_ms", "ms", "compile, cache off"),
    ("compile_cached_ms", "ms", "compile, cached (same tools again)"),
    ("mask_us_per_token", "µs per token", "token mask"),
]


def plot(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(16, 4))
    for axis, (key, unit, title) in zip(axes, PANELS, strict=True):
        for i, (who, label) in enumerate([("ours", "omni-sglang"), ("sglang", result["peer"])]):
            axis.bar(
                [j + i * 0.4 for j in range(len(rows))],
                [r[f"{who}_{key}"] for r in rows],
                0.4,
                label=label,
            )
        axis.set_xticks(
            [j + 0.2 for j in range(len(rows))],
            [f"{r['mode']}\nx{r[f'ratio_{key}']:.2f}" for r in rows],
        )
        axis.set_ylabel(unit)
        axis.set_title(title)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"tool-call grammar (xgrammar), {result['tokenizer']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/grammar.json")
    plot(json.loads(source.read_text()), source.with_suffix(".png"))
