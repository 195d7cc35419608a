"""The reasoning benchmark's plot: the budget processor's cost per request step, ours
(both modes) beside SGLang's, and the parser's cost per chunk
(``bench/results/reasoning.json`` -> ``.png``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PROCESSORS = [
    ("ours_maximum_us_per_request_step", "ours (maximum)"),
    ("ours_overshoot_us_per_request_step", "ours (overshoot)"),
    ("sglang_us_per_request_step", "SGLang ThinkingBudgetLogitProcessor"),
]


def plot(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["budget_processor"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(PROCESSORS)
    for i, (key, label) in enumerate(PROCESSORS):
        axes[0].bar(
            [j + i * width for j in range(len(rows))], [r[key] for r in rows], width, label=label
        )
    axes[0].set_xticks(
        [j + width for j in range(len(rows))],
        [f"prompt {r['prompt_tokens'] // 1024}k, batch {r['batch']}" for r in rows],
        fontsize=8,
    )
    axes[0].set_yscale("log")
    axes[0].set_ylabel("µs per request per decode step")
    axes[0].set_title("thinking-budget processor")
    axes[0].legend(fontsize=8)
    parser = result["parser"]
    for i, (key, label) in enumerate(
        [("ours_us_per_chunk", "ours"), ("sglang_us_per_chunk", "SGLang Nemotron3Detector")]
    ):
        axes[1].bar(
            [j + i * 0.4 for j in range(len(parser))], [r[key] for r in parser], 0.4, label=label
        )
    axes[1].set_xticks(
        [j + 0.2 for j in range(len(parser))], [f"{r['chunks']} chunks" for r in parser]
    )
    axes[1].set_ylabel("µs per chunk")
    axes[1].set_title("streaming reasoning parser")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/reasoning.json")
    plot(json.loads(source.read_text()), source.with_suffix(".png"))
