"""Format detection from magic numbers, and the checks against declared types."""

from __future__ import annotations

import functools

import pytest

from omni_sglang.media import synth
from omni_sglang.media.errors import MediaError
from omni_sglang.media.sniff import MediaFormat, check_declared_mime, check_modality, sniff


@functools.cache
def sample(name: str) -> bytes:
    kind, fmt = name.split("/")
    if kind == "image":
        return synth.image_bytes(fmt.upper())
    if fmt == "wav-np":
        return synth.wav_bytes(0.2)
    if kind == "audio":
        return synth.audio_bytes(fmt, 0.5)
    return synth.video_bytes(0.5, (64, 48), 10, fmt=fmt)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("image/jpeg", ("image", "jpeg")),
        ("image/png", ("image", "png")),
        ("image/gif", ("image", "gif")),
        ("image/webp", ("image", "webp")),
        ("audio/wav-np", ("audio", "wav")),
    ],
)
def test_sniff_generated_by_python(name, expected):
    assert sniff(sample(name)) == MediaFormat(*expected)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("audio/mp3", ("audio", "mp3")),
        ("audio/flac", ("audio", "flac")),
        ("audio/wav", ("audio", "wav")),
        ("audio/m4a", ("audio", "m4a")),
        ("video/mp4", ("video", "mp4")),
        ("video/webm", ("video", "webm")),
    ],
)
def test_sniff_generated_by_ffmpeg(name, expected):
    assert sniff(sample(name)) == MediaFormat(*expected)


def test_mp3_frame_sync_without_id3():
    frame = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(100)  # MPEG-1 layer III, 128 kbit/s
    assert sniff(frame) == ("audio", "mp3")


def test_adts_aac_is_not_mp3():
    with pytest.raises(MediaError, match="not a recognised media format"):
        sniff(bytes([0xFF, 0xF1, 0x50, 0x80]) + bytes(100))


def test_heic_is_refused_not_taken_for_mp4():
    with pytest.raises(MediaError, match="HEIF/AVIF"):
        sniff(b"\x00\x00\x00\x18ftypheic" + bytes(100))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"<!DOCTYPE html><html>404</html>", "error page"),
        (b"%PDF-1.7", "PDF"),
        (b"BM\x00\x00", "BMP"),
        (b"", "empty"),
        (b"\x01\x02\x03\x04garbage", "01 02 03 04"),
    ],
)
def test_unknown_bytes_are_named(data, words):
    with pytest.raises(MediaError, match=words) as info:
        sniff(data)
    assert "supported formats are" in info.value.message
    assert info.value.status_code == 400


def test_declared_mime_must_agree():
    jpeg = sniff(sample("image/jpeg"))
    check_declared_mime("image/jpeg", jpeg)
    check_declared_mime("image/jpg", jpeg)
    check_declared_mime(None, jpeg)
    check_declared_mime("application/octet-stream", jpeg)
    with pytest.raises(MediaError, match="data URI says image/png but the bytes are a JPEG"):
        check_declared_mime("image/png", jpeg)
    with pytest.raises(MediaError, match="data URI says video/mp4 but the bytes are a JPEG"):
        check_declared_mime("video/mp4", jpeg)


def test_mp4_and_mov_labels_are_interchangeable():
    check_declared_mime("video/quicktime", MediaFormat("video", "mp4"))
    check_declared_mime("video/mp4", MediaFormat("video", "mov"))


def test_modality_must_match_part_type():
    check_modality("image", MediaFormat("image", "png"))
    with pytest.raises(MediaError, match="video_url part must hold a video, but the bytes are"):
        check_modality("video", MediaFormat("image", "png"), "video_url")
    with pytest.raises(MediaError, match="input_audio part must hold audio"):
        check_modality("audio", MediaFormat("video", "mp4"), "input_audio")
