"""Synthetic media for tests and benchmarks, made locally and deterministically.

Images come from Pillow, WAV from numpy + soundfile, everything else from the
``ffmpeg`` command line (``testsrc`` pictures, ``sine`` tones), so no test needs a
network or a checked-in binary.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None


def image_bytes(
    fmt: str = "JPEG", size: tuple[int, int] = (64, 48), *, frames: int = 1, alpha: bool = False
) -> bytes:
    """A gradient picture (several differing frames for an animated GIF/WebP)."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    pics = []
    for k in range(frames):
        r = np.broadcast_to(x, (height, width))
        g = np.broadcast_to(y, (height, width))
        b = np.full((height, width), (k * 60) % 256, dtype=np.float32)
        rgb = np.stack([r, g, b], axis=-1).astype(np.uint8)
        pic = Image.fromarray(rgb, "RGB")
        if alpha:
            pic.putalpha(Image.fromarray(np.broadcast_to(x, (height, width)).astype(np.uint8)))
        pics.append(pic)
    out = io.BytesIO()
    if frames > 1:
        pics[0].save(out, fmt, save_all=True, append_images=pics[1:], duration=100, loop=0)
    else:
        pics[0].save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def wav_bytes(
    seconds: float = 1.0, rate: int = 44100, channels: int = 2, freq: float = 440.0
) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    tone = 0.5 * np.sin(2 * np.pi * freq * t)
    data = np.stack([tone] * channels, axis=-1) if channels > 1 else tone
    out = io.BytesIO()
    sf.write(out, data, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def _ffmpeg(args: list[str], suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"out{suffix}"
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args, str(path)]
        subprocess.run(cmd, check=True, capture_output=True)
        return path.read_bytes()


def audio_bytes(fmt: str = "mp3", seconds: float = 2.0, rate: int = 44100) -> bytes:
    """A 440 Hz tone as mp3 / flac / wav / m4a, encoded by ffmpeg."""
    codec = {
        "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
        "flac": ["-c:a", "flac"],
        "wav": ["-c:a", "pcm_s16le"],
        "m4a": ["-c:a", "aac", "-b:a", "64k"],
    }[fmt]
    source = f"sine=frequency=440:duration={seconds}:sample_rate={rate}"
    return _ffmpeg(["-f", "lavfi", "-i", source, "-ac", "2", *codec], f".{fmt}")


def video_bytes(
    seconds: float = 4.0,
    size: tuple[int, int] = (320, 240),
    fps: int = 30,
    *,
    audio: bool = False,
    fmt: str = "mp4",
    preset: str = "ultrafast",
) -> bytes:
    """``testsrc`` (a frame counter and moving pattern), optionally with a sine track."""
    width, height = size
    args = ["-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate=44100"]
    if fmt == "webm":
        args += ["-c:v", "libvpx", "-deadline", "realtime", "-b:v", "500k"]
        args += ["-c:a", "libvorbis"] if audio else []
    else:
        args += ["-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p", "-threads", "1"]
        args += ["-c:a", "aac", "-b:a", "64k"] if audio else []
        args += ["-movflags", "+faststart"]
    if audio:
        args += ["-shortest"]
    return _ffmpeg(args, f".{fmt}")
