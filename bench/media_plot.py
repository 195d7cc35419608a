"""The media benchmark's plot: decoders against SGLang's loaders, and the engine path's
stages on each engine (``bench/results/media.json`` -> ``.png``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LOADERS = [
    ("sglang_s", "SGLang's loader"),
    ("ours_decode_s", "our decoder"),
    ("ours_loader_cold_s", "our loader (file://, cold)"),
]
STAGES = ["prepare", "sglang_processor", "first_token", "text_first_token"]


def plot(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    media = [r for r in result["results"] if "sglang_s" in r]
    engine = result.get("engine_path") or []
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(LOADERS)
    for i, (key, label) in enumerate(LOADERS):
        axes[0].bar(
            [j + i * width for j in range(len(media))], [r[key] for r in media], width, label=label
        )
    axes[0].set_xticks(
        [j + width for j in range(len(media))],
        [r["media"].split(" ->")[0] for r in media],
        fontsize=8,
    )
    axes[0].set_ylabel("seconds (median)")
    axes[0].set_title("decode: ours vs SGLang's loaders")
    axes[0].legend(fontsize=8)
    bars = [
        (e, s)
        for e in ("cpu_engine_s", "sglang_engine_s")
        for s in STAGES
        if any(s in r[e] for r in engine)  # the CPU engine has no SGLang processor
    ]
    width = 0.8 / len(bars)
    for i, (eng, stage) in enumerate(bars):
        values = [r[eng].get(stage, 0.0) for r in engine]
        label = f"{eng.split('_')[0]}: {stage}"
        axes[1].bar([j + i * width for j in range(len(engine))], values, width, label=label)
    axes[1].set_xticks(
        [j + 0.4 for j in range(len(engine))],
        [r["media"].split(" ->")[0] for r in engine],
        fontsize=8,
    )
    axes[1].set_yscale("log")
    axes[1].set_title("engine path per stage (tiny checkpoints)")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/media.json")
    plot(json.loads(source.read_text()), source.with_suffix(".png"))
