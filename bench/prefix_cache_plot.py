"""The plot of ``bench/prefix_cache.py``: per conversation, the median time to the first
token at each turn with and without the radix cache, and the cached / uncached ratio
against the 30% goal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt

GOAL = 0.30


def plot(result: dict[str, Any], path: Path) -> None:
    rows = result["results"]
    kinds = list(dict.fromkeys(r["conversation"] for r in rows))
    fig, axes = plt.subplots(1, len(kinds) + 1, figsize=(5 * (len(kinds) + 1), 4.2))
    for ax, kind in zip(axes, kinds, strict=False):
        for server in ("uncached", "cached"):
            mine = [r for r in rows if r["conversation"] == kind and r["server"] == server]
            ax.plot(
                [r["turn"] for r in mine], [r["median_ttft_ms"] for r in mine], "o-", label=server
            )
        ax.set_title(f"{kind}: time to first token")
        ax.set_xlabel("turn")
        ax.set_ylabel("ms (median)")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    ax = axes[-1]
    for kind in kinds:
        mine = [r for r in rows if r["conversation"] == kind and "ttft_vs_uncached" in r]
        ax.plot([r["turn"] for r in mine], [r["ttft_vs_uncached"] for r in mine], "o-", label=kind)
    ax.axhline(GOAL, linestyle="--", color="grey", label=f"goal {GOAL:.0%}")
    ax.set_title("cached / uncached TTFT")
    ax.set_xlabel("turn")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
