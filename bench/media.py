"""Media preparation, ours against SGLang's own loaders, in one run:

- a 30 s 1280x720 30 fps H.264 MP4 sampled at 2 fps (60 frames);
- a 60 s 44.1 kHz stereo MP3 to 16 kHz mono;
- a 12-megapixel JPEG to an RGB image.

"ours" is the decoder alone (bytes in memory, like SGLang's functions are given) and
the whole loader from a file:// URL with a cold cache (read, sniff, hash, decode); the
cache-hit row is a second load of the same URL; "plan only" is what the sglang engine
costs us per video before SGLang decodes it (limits and frame plan, no pixels).
SGLang: ``load_video`` + ``sample_video_frames`` + ``get_frames_at`` (what its Nemotron
processor's ``parse_video`` does), ``load_audio``, ``load_image``. All media is generated locally.

Then the same media through each engine, stage by stage (``bench.media_engine``): our
preparation, SGLang's processor, the time to the first token with and without the media.
The plot (``--plot``, default beside ``--out``) shows both parts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import media_engine, media_plot
from omni_sglang.media import FetchPolicy, MediaCache, MediaLimits, MediaLoader
from omni_sglang.media.audio import decode_audio
from omni_sglang.media.image import decode_image
from omni_sglang.media.synth import audio_bytes, video_bytes
from omni_sglang.media.video import decode_video

MEDIA_LABELS = {
    "video": "MP4 30 s 1280x720 30 fps, 2 fps -> 60 frames",
    "audio": "MP3 60 s 44.1 kHz stereo -> 16 kHz mono",
    "image": "JPEG 4000x3000 (12 MP) -> RGB",
}


def timed_pair(
    a: Callable[[], Any], b: Callable[[], Any], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Alternate a and b, so load from other processes on the shared CPU hits both alike."""
    a(), b()  # warm
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((a, times[0]), (b, times[1])):
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return _stats(times[0]), _stats(times[1])


def _stats(times: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4)}


async def time_loader(
    policy: FetchPolicy, kind: str, url: str, repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Cold (a new cache each time) and cache-hit loads, in one event loop."""

    async def measure(make_loader: Callable[[], MediaLoader]) -> dict[str, float]:
        await make_loader().load(kind, url)  # warm
        times = []
        for _ in range(repeats):
            loader = make_loader()
            started = time.perf_counter()
            await loader.load(kind, url)
            times.append(time.perf_counter() - started)
        return _stats(times)

    shared = MediaLoader(policy, MediaCache())
    cold = await measure(lambda: MediaLoader(policy, MediaCache()))
    hit = await measure(lambda: shared)
    return cold, hit


def video_decoders(blob: bytes, repeats: int) -> dict[str, Any]:
    """The decoder choice: the same 60 frames with torchcodec and with decord (a peer,
    not a dependency: the row says so when it is not installed)."""
    import io

    try:
        import decord
    except ImportError:
        row = {"media": "decoder choice", "skipped": "decord is not installed (pip install decord)"}
        print(json.dumps(row), flush=True)
        return row
    import numpy as np
    from torchcodec.decoders import VideoDecoder

    def torchcodec_frames() -> Any:
        decoder = VideoDecoder(blob, dimension_order="NHWC", seek_mode="exact")
        n = decoder.metadata.num_frames or 0
        return decoder.get_frames_at(np.linspace(0, n - 1, 60).round().astype(int).tolist())

    def decord_frames() -> Any:
        reader = decord.VideoReader(io.BytesIO(blob), ctx=decord.cpu(0))
        indices = np.linspace(0, len(reader) - 1, 60).round().astype(int).tolist()
        return reader.get_batch(indices).asnumpy()

    tc, dc = timed_pair(torchcodec_frames, decord_frames, repeats)
    row = {
        "media": "decoder choice: MP4 30 s 1280x720, 60 frames from bytes",
        "torchcodec_s": tc["median_s"],
        "decord_s": dc["median_s"],
    }
    row["ratio_torchcodec_over_decord"] = round(row["torchcodec_s"] / row["decord_s"], 3)
    print(json.dumps(row), flush=True)
    return row


def make_jpeg(path: Path) -> None:
    # testsrc2 has detail everywhere, so the JPEG is photo-sized (a few MB), not a flat
    # gradient that decodes unrealistically fast.
    source = "testsrc2=size=4000x3000:rate=1"
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source]
    subprocess.run([*cmd, "-frames:v", "1", "-q:v", "3", str(path)], check=True)


def make_media(tmp: Path) -> dict[str, Path]:
    paths = {"video": tmp / "v30.mp4", "audio": tmp / "a60.mp3", "image": tmp / "i12mp.jpg"}
    paths["video"].write_bytes(video_bytes(30.0, (1280, 720), 30, preset="veryfast"))
    paths["audio"].write_bytes(audio_bytes("mp3", 60.0))
    make_jpeg(paths["image"])
    return paths


def bench(paths: dict[str, Path], repeats: int) -> list[dict[str, Any]]:
    from sglang.srt.utils.common import load_audio, load_image, load_video, sample_video_frames

    limits = MediaLimits()
    blobs = {kind: path.read_bytes() for kind, path in paths.items()}

    def sglang_video() -> Any:
        video = load_video(blobs["video"], use_gpu=False)
        indices = sample_video_frames(video, desired_fps=2, max_frames=128)
        return video.get_frames_at(indices)

    sglang = {
        "video": sglang_video,
        "audio": lambda: load_audio(blobs["audio"], sr=16000),
        "image": lambda: load_image(blobs["image"], gpu_image_decode=False)[0],
    }
    ours = {
        "video": lambda: decode_video(blobs["video"], limits),
        "audio": lambda: decode_audio(blobs["audio"], limits, fmt="mp3"),
        "image": lambda: decode_image(blobs["image"], limits),
    }
    policy = FetchPolicy(limits=limits, allowed_local_path=str(paths["video"].parent))

    rows = []
    for kind in ("video", "audio", "image"):
        url = f"file://{paths[kind]}"
        theirs, mine = timed_pair(sglang[kind], ours[kind], repeats)
        cold, hit = asyncio.run(time_loader(policy, kind, url, repeats))
        row = {
            "media": MEDIA_LABELS[kind],
            "bytes": len(blobs[kind]),
            "sglang_s": theirs["median_s"],
            "ours_decode_s": mine["median_s"],
            "ours_loader_cold_s": cold["median_s"],
            "ours_cache_hit_s": hit["median_s"],
            "ratio_ours_over_sglang": round(mine["median_s"] / theirs["median_s"], 3),
            "ratio_loader_over_sglang": round(cold["median_s"] / theirs["median_s"], 3),
            "ratio_cache_hit_over_sglang": round(hit["median_s"] / theirs["median_s"], 5),
            "min_s": {"sglang": theirs["min_s"], "ours_decode": mine["min_s"]},
        }
        if kind == "video":
            # What the sglang engine costs us before SGLang decodes the video itself:
            # limits and the frame plan from the file's index, no pixels.
            plan = timed_pair(
                sglang[kind],
                lambda: decode_video(blobs["video"], limits, decode_frames=False),
                repeats,
            )[1]
            row["ours_plan_only_s"] = plan["median_s"]
            row["ratio_plan_only_over_sglang"] = round(plan["median_s"] / theirs["median_s"], 5)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/results/media.json")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--engine-repeats", type=int, default=3)
    parser.add_argument("--plot", default=None, help="PNG path (default: --out as .png)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_media(Path(tmp))
        rows = bench(paths, args.repeats)
        rows.append(video_decoders(paths["video"].read_bytes(), args.repeats))
        engine_rows = media_engine.run(paths, MEDIA_LABELS, args.engine_repeats)
    result = {
        "benchmark": "media",
        "repeats": args.repeats,
        "statistic": "median seconds per item (min in min_s)",
        "decoder": "torchcodec (FFmpeg) for video and audio, Pillow for images",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": rows,
        "engine_path": engine_rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    plot = Path(args.plot or Path(args.out).with_suffix(".png"))
    media_plot.plot(result, plot)
    print(f"wrote {args.out} and {plot}")


if __name__ == "__main__":
    main()
