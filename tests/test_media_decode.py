"""Decoders on locally generated media: images, audio, video (frames, times, audio track),
their limits, and truncated or corrupt files of every format (always a MediaError)."""

from __future__ import annotations

import functools
import struct
import time
import zlib

import numpy as np
import pytest

from omni_sglang.media import synth
from omni_sglang.media.decode import (
    decode_audio,
    decode_image,
    decode_image_with_warnings,
    decode_video,
)
from omni_sglang.media.errors import MediaError, MediaLimitError
from omni_sglang.media.limits import MediaLimits

LIMITS = MediaLimits()


@functools.cache
def media(name: str) -> bytes:
    """Generated once per test process: 4 s 320x240 30 fps videos, 2 s audio."""
    if name == "mp4":
        return synth.video_bytes(4.0)
    if name == "mp4+audio":
        return synth.video_bytes(4.0, audio=True)
    if name == "webm":
        return synth.video_bytes(1.0, (160, 120), 10, fmt="webm")
    if name == "wav-np":
        return synth.wav_bytes(1.0, rate=44100, channels=2)
    return synth.audio_bytes(name, 2.0)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size but carries almost no pixel data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )


def truncated(data: bytes, fraction: float = 0.5) -> bytes:
    return data[: int(len(data) * fraction)]


def corrupt(data: bytes, keep: int = 16) -> bytes:
    """The real magic number, then noise: sniffs as the format, cannot decode."""
    noise = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    return data[:keep] + noise


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * rate / len(samples))


# --- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_image_formats_decode_to_rgb(fmt):
    img = decode_image(synth.image_bytes(fmt, (64, 48)), LIMITS)
    assert img.mode == "RGB" and img.size == (64, 48)
    r, g, _ = img.getpixel((63, 47))
    assert r > 200 and g > 200  # the gradient, not a blank picture


def test_animated_gif_uses_first_frame_with_warning():
    img, notes = decode_image_with_warnings(synth.image_bytes("GIF", (40, 30), frames=3), LIMITS)
    assert img.getpixel((0, 0))[2] < 30  # frame 0 has blue 0; frame 1 has 60
    assert notes == ["animated GIF image with 3 frames: only the first frame is used"]


def test_transparent_png_is_composited_on_white():
    img = decode_image(synth.image_bytes("PNG", (40, 30), alpha=True), LIMITS)
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (255, 255, 255)  # fully transparent corner


def test_pixel_limit():
    with pytest.raises(MediaLimitError, match=r"image is 64x48 pixels .3072.; the limit is 1000"):
        decode_image(synth.image_bytes("PNG", (64, 48)), MediaLimits(max_image_pixels=1000))


@pytest.mark.parametrize(("w", "h"), [(8000, 8000), (100000, 100000)])
def test_decompression_bomb_is_refused_from_the_header(w, h):
    started = time.monotonic()
    with pytest.raises(MediaLimitError, match=f"image is .*{w * h}.* the limit is 40000000"):
        decode_image(png_header_only(w, h), LIMITS)
    assert time.monotonic() - started < 1.0  # nothing was decoded


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
@pytest.mark.parametrize("damage", [truncated, corrupt])
def test_damaged_images_are_media_errors(fmt, damage):
    data = damage(synth.image_bytes(fmt, (200, 150)))
    with pytest.raises(MediaError) as info:
        decode_image(data, LIMITS)
    assert not isinstance(info.value, MediaLimitError)
    assert "image" in info.value.message


# --- audio --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "m4a"])
def test_audio_formats_decode_to_16k_mono(fmt):
    audio = decode_audio(media(fmt), LIMITS, fmt=fmt)
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    assert audio.duration == pytest.approx(2.0, abs=0.1)
    assert dominant_frequency(audio.samples, 16000) == pytest.approx(440, abs=5)
    assert audio.source_sample_rate == 44100 and audio.source_channels == 2
    assert not audio.samples.flags.writeable


def test_stereo_wav_from_numpy():
    audio = decode_audio(media("wav-np"), LIMITS, fmt="wav")
    assert audio.samples.shape == (16000,)


def test_audio_duration_limit():
    with pytest.raises(MediaLimitError, match=r"audio is 2.0 s long; the limit is 1.5 s"):
        decode_audio(media("flac"), MediaLimits(max_audio_seconds=1.5), fmt="flac")


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac"])
def test_truncated_audio(fmt):
    with pytest.raises(MediaError, match=r"truncated|could not be decoded") as info:
        decode_audio(truncated(media(fmt)), LIMITS, fmt=fmt)
    assert not isinstance(info.value, MediaLimitError)


@pytest.mark.parametrize("fmt", ["wav", "flac", "m4a"])
def test_corrupt_audio(fmt):
    with pytest.raises(MediaError):
        decode_audio(corrupt(media(fmt)), LIMITS, fmt=fmt)


def test_mp3_id3_tag_without_frames():
    data = media("mp3")
    with pytest.raises(MediaError):
        decode_audio(data[:10] + bytes(2000), LIMITS, fmt="mp3")


# --- video --------------------------------------------------------------------------------


def test_video_default_two_fps():
    video = decode_video(media("mp4"), LIMITS)
    assert video.frames.shape == (8, 240, 320, 3) and video.frames.dtype == np.uint8
    assert video.timestamps == pytest.approx([0.5 * i for i in range(8)])
    assert video.duration == pytest.approx(4.0)
    assert video.source_fps == pytest.approx(30.0)
    assert video.audio is None and video.warnings == []
    assert not np.array_equal(video.frames[0], video.frames[-1])  # testsrc changes
    assert not video.frames.flags.writeable


@pytest.mark.parametrize(
    ("fps", "num_frames", "timestamps"),
    [
        (1.0, None, [0.0, 1.0, 2.0, 3.0]),
        (1.0, -1, [0.0, 1.0, 2.0, 3.0]),
        (-1, 5, [0.0, 1.0, 2.0, 89 / 30, 119 / 30]),
        (1.0, 6, [0.0, 24 / 30, 48 / 30, 71 / 30, 95 / 30, 119 / 30]),  # 6 > 4 at 1 fps
        (3.0, 6, [i / 3 for i in range(12)]),  # 12 at 3 fps > 6
        (-1, -1, [0.5 * i for i in range(8)]),
    ],
)
def test_video_fps_and_num_frames(fps, num_frames, timestamps):
    video = decode_video(media("mp4"), LIMITS, fps=fps, num_frames=num_frames)
    assert len(video.frames) == len(timestamps)
    assert video.timestamps == pytest.approx(timestamps, abs=1e-3)


def test_video_rate_above_cap_spreads_the_cap():
    video = decode_video(media("mp4"), MediaLimits(max_video_frames=5), fps=2.0)
    assert video.frame_indices == [0, 30, 60, 89, 119]
    assert "5 frames (the limit) were spread" in video.warnings[0]


def test_video_num_frames_above_cap_is_refused():
    with pytest.raises(MediaLimitError, match="num_frames=129 is above the limit of 128 frames"):
        decode_video(media("mp4"), LIMITS, num_frames=129)


def test_video_duration_limit():
    with pytest.raises(MediaLimitError, match=r"video is 4.0 s long; the limit is 3 s"):
        decode_video(media("mp4"), MediaLimits(max_video_seconds=3))


def test_video_frame_size_limit():
    with pytest.raises(MediaLimitError, match="video frames are 320x240 pixels"):
        decode_video(media("mp4"), MediaLimits(max_image_pixels=10_000))


def test_large_frames_are_scaled_down():
    video = decode_video(media("mp4"), MediaLimits(max_video_frame_pixels=160 * 120), num_frames=2)
    assert video.frames.shape == (2, 120, 160, 3)
    assert video.source_size == (320, 240)
    assert "scaled from 320x240 to 160x120" in video.warnings[0]


def test_audio_in_video():
    video = decode_video(media("mp4+audio"), LIMITS, with_audio=True)
    assert video.has_audio_track and video.audio is not None
    assert video.audio.dtype == np.float32 and video.audio.ndim == 1
    assert len(video.audio) / 16000 == pytest.approx(4.0, abs=0.1)
    assert dominant_frequency(video.audio, 16000) == pytest.approx(440, abs=5)


def test_audio_in_video_not_requested():
    video = decode_video(media("mp4+audio"), LIMITS)
    assert video.has_audio_track and video.audio is None


def test_audio_in_video_without_a_track():
    video = decode_video(media("mp4"), LIMITS, with_audio=True)
    assert not video.has_audio_track and video.audio is None
    assert video.warnings == ["use_audio_in_video is set but the video has no audio track"]


def test_webm():
    video = decode_video(media("webm"), LIMITS, num_frames=4)
    assert video.frames.shape == (4, 120, 160, 3)


@pytest.mark.parametrize("damage", [truncated, corrupt, lambda d: d[:1000]])
def test_damaged_videos_are_media_errors(damage):
    with pytest.raises(MediaError) as info:
        decode_video(damage(media("mp4")), LIMITS)
    assert not isinstance(info.value, MediaLimitError)
    assert "video" in info.value.message


def test_audio_file_is_not_a_video():
    with pytest.raises(MediaError, match="no video stream"):
        decode_video(media("mp3"), LIMITS)
