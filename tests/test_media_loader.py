"""MediaLoader end to end: every format by data URI and by URL, declared-type checks,
options, input_audio, limits, and the caches (one fetch and one decode when shared)."""

from __future__ import annotations

import asyncio
import base64
import functools

import numpy as np
import pytest
from PIL import Image

from omni_sglang.errors import ClientError
from omni_sglang.media import (
    DecodedAudio,
    DecodedVideo,
    FetchPolicy,
    MediaCache,
    MediaError,
    MediaLimitError,
    MediaLimits,
    MediaLoader,
    synth,
)
from omni_sglang.media.testserver import MediaServer

# name -> (modality, MIME type, make bytes)
SAMPLES = {
    "a.jpg": ("image", "image/jpeg", lambda: synth.image_bytes("JPEG", (64, 48))),
    "a.png": ("image", "image/png", lambda: synth.image_bytes("PNG", (64, 48))),
    "a.gif": ("image", "image/gif", lambda: synth.image_bytes("GIF", (64, 48), frames=2)),
    "a.webp": ("image", "image/webp", lambda: synth.image_bytes("WEBP", (64, 48))),
    "a.mp4": ("video", "video/mp4", lambda: synth.video_bytes(2.0, (160, 120), 10)),
    "av.mp4": ("video", "video/mp4", lambda: synth.video_bytes(2.0, (160, 120), 10, audio=True)),
    "a.wav": ("audio", "audio/wav", lambda: synth.audio_bytes("wav", 1.0)),
    "a.mp3": ("audio", "audio/mpeg", lambda: synth.audio_bytes("mp3", 1.0)),
    "a.flac": ("audio", "audio/flac", lambda: synth.audio_bytes("flac", 1.0)),
}


@functools.cache
def data(name: str) -> bytes:
    return SAMPLES[name][2]()


def data_uri(name: str, mime: str | None = None) -> str:
    return f"data:{mime or SAMPLES[name][1]};base64," + base64.b64encode(data(name)).decode()


@pytest.fixture(scope="module")
def server():
    with MediaServer({f"/{name}": data(name) for name in SAMPLES}, delay=0.05) as srv:
        yield srv


def new_loader(**limits) -> MediaLoader:
    return MediaLoader(FetchPolicy(allow_private_hosts=True, limits=MediaLimits(**limits)))


def check_result(modality, result):
    assert result.modality == modality and len(result.content_hash) == 64
    if modality == "image":
        assert isinstance(result.data, Image.Image) and result.data.size == (64, 48)
    elif modality == "video":
        assert isinstance(result.data, DecodedVideo)
        assert result.data.frames.shape == (4, 120, 160, 3)  # 2 s at the default 2 fps
    else:
        assert isinstance(result.data, DecodedAudio)
        assert result.data.duration == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("name", list(SAMPLES))
async def test_every_format_by_data_uri(name):
    modality = SAMPLES[name][0]
    check_result(modality, await new_loader().load(modality, data_uri(name)))


@pytest.mark.parametrize("name", list(SAMPLES))
async def test_every_format_by_url(server, name):
    modality = SAMPLES[name][0]
    check_result(modality, await new_loader().load(modality, f"{server.url}/{name}"))


async def test_data_uri_mime_must_match_bytes():
    with pytest.raises(MediaError, match="data URI says image/png but the bytes are a JPEG"):
        await new_loader().load("image", data_uri("a.jpg", "image/png"))
    with pytest.raises(MediaError, match="data URI says audio/wav but the bytes are an MP3"):
        await new_loader().load("audio", data_uri("a.mp3", "audio/wav"))


async def test_part_type_must_match_bytes(server):
    with pytest.raises(MediaError, match=r"video_url part must hold a video.*an MP3 audio"):
        await new_loader().load("video", f"{server.url}/a.mp3")
    with pytest.raises(MediaError, match=r"image_url part must hold an image.*an MP4 video"):
        await new_loader().load("image", data_uri("a.mp4", "application/octet-stream"))


async def test_errors_are_client_errors():
    with pytest.raises(MediaError) as info:
        await new_loader().load("image", "data:image/png;base64,AAAA")
    assert isinstance(info.value, ClientError)
    assert (info.value.status_code, info.value.code) == (400, "invalid_media")
    with pytest.raises(MediaLimitError) as limit:
        await new_loader(max_image_bytes=100).load("image", data_uri("a.png"))
    assert (limit.value.status_code, limit.value.code) == (400, "media_limit_exceeded")


async def test_byte_limit_is_per_kind(server):
    assert len(data("a.png")) > 100
    loader = new_loader(max_image_bytes=100, max_video_bytes=10_000_000)
    with pytest.raises(MediaLimitError, match="limit for this kind of media is 100 bytes"):
        await loader.load("image", f"{server.url}/a.png")
    await loader.load("video", f"{server.url}/a.mp4")


async def test_video_options_and_audio_in_video():
    loader = new_loader()
    both = await loader.load("video", data_uri("av.mp4"), {"fps": 1, "use_audio_in_video": True})
    assert both.data.timestamps == pytest.approx([0.0, 1.0])
    assert both.data.audio is not None and both.data.audio.dtype == np.float32
    silent = await loader.load("video", data_uri("a.mp4"), {"use_audio_in_video": True})
    assert silent.data.audio is None
    assert silent.warnings == ["use_audio_in_video is set but the video has no audio track"]


@pytest.mark.parametrize("options", [{}, {"num_frames": 3, "fps": -1}, {"fps": 4}])
async def test_frame_plan_without_pixels(options):
    """For an engine that decodes videos itself: the same frames and times, no pixels,
    no sound decoded (the container still says whether there is a track)."""
    loader = new_loader()
    full = await loader.load("video", data_uri("av.mp4"), {**options, "use_audio_in_video": True})
    plan = await loader.load(
        "video", data_uri("av.mp4"), {**options, "use_audio_in_video": True, "decode_frames": False}
    )
    assert plan.data.frames is None and plan.data.audio is None and plan.data.has_audio_track
    assert full.data.frames is not None and full.data.audio is not None
    assert plan.data.frame_indices == full.data.frame_indices
    assert plan.data.timestamps == pytest.approx(full.data.timestamps)
    assert plan.content_hash != full.content_hash and loader.cache.decodes == 2
    silent = await loader.load(
        "video", data_uri("a.mp4"), {"use_audio_in_video": True, "decode_frames": False}
    )
    assert silent.warnings == ["use_audio_in_video is set but the video has no audio track"]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"fps": "fast"}, "fps must be a number"),
        ({"fps": float("nan")}, "fps must be a number"),
        ({"num_frames": 2.5}, "num_frames must be an integer"),
        ({"num_frames": True}, "num_frames must be an integer"),
        ({"use_audio_in_video": "yes"}, "use_audio_in_video must be true or false"),
    ],
)
async def test_bad_video_options(options, words):
    with pytest.raises(MediaError, match=words):
        await new_loader().load("video", data_uri("a.mp4"), options)


async def test_num_frames_above_cap_refused_before_fetching(server):
    before = server.hits["/a.mp4"]
    with pytest.raises(MediaLimitError, match="num_frames=300 is above the limit of 128"):
        await new_loader().load("video", f"{server.url}/a.mp4", {"num_frames": 300})
    assert server.hits["/a.mp4"] == before


async def test_concurrent_loads_of_one_url_fetch_and_decode_once(server):
    loader = new_loader()
    before = server.hits["/av.mp4"]
    first, second = await asyncio.gather(
        loader.load("video", f"{server.url}/av.mp4"), loader.load("video", f"{server.url}/av.mp4")
    )
    assert server.hits["/av.mp4"] == before + 1
    cache = loader.cache
    assert (cache.fetches, cache.decodes, cache.misses, cache.hits) == (1, 1, 1, 1)
    assert first.data is second.data and first.content_hash == second.content_hash


async def test_same_content_by_url_and_data_uri_decodes_once(server):
    loader = new_loader()
    by_url = await loader.load("image", f"{server.url}/a.webp")
    by_data = await loader.load("image", data_uri("a.webp"))
    assert by_url.content_hash == by_data.content_hash
    assert loader.cache.decodes == 1 and loader.cache.hits == 1


async def test_options_are_part_of_the_content_hash():
    loader = new_loader()
    two = await loader.load("video", data_uri("a.mp4"))
    one = await loader.load("video", data_uri("a.mp4"), {"fps": 1})
    same = await loader.load("video", data_uri("a.mp4"), {"fps": 2.0, "num_frames": -1})
    assert one.content_hash != two.content_hash
    assert same.content_hash == two.content_hash  # the default spelled out
    assert loader.cache.decodes == 2


async def test_failed_decode_is_not_cached():
    loader = new_loader()
    bad = "data:image/png;base64," + base64.b64encode(data("a.png")[:60]).decode()
    for _ in range(2):
        with pytest.raises(MediaError):
            await loader.load("image", bad)
    assert loader.cache.decodes == 2 and len(loader.cache) == 0


async def test_gif_warning_reaches_the_caller():
    result = await new_loader().load("image", data_uri("a.gif"))
    assert result.warnings == ["animated GIF image with 2 frames: only the first frame is used"]


async def test_input_audio():
    loader = new_loader()
    for name, fmt in [("a.wav", "wav"), ("a.mp3", "mp3"), ("a.flac", "FLAC")]:
        result = await loader.load_input_audio(base64.b64encode(data(name)).decode(), fmt)
        assert isinstance(result.data, DecodedAudio) and result.modality == "audio"


@pytest.mark.parametrize(
    ("name", "fmt", "words"),
    [
        ("a.mp3", "wav", "input_audio format is 'wav' but the bytes are an MP3"),
        ("a.wav", "ogg", "format 'ogg' is not supported"),
        ("a.jpg", "wav", "input_audio part must hold audio"),
    ],
)
async def test_input_audio_errors(name, fmt, words):
    with pytest.raises(MediaError, match=words):
        await new_loader().load_input_audio(base64.b64encode(data(name)).decode(), fmt)


async def test_input_audio_bad_base64_and_size():
    with pytest.raises(MediaError, match="not valid base64"):
        await new_loader().load_input_audio("***", "wav")
    b64 = base64.b64encode(data("a.wav")).decode()
    with pytest.raises(MediaLimitError, match="input_audio data holds about"):
        await new_loader(max_audio_bytes=1000).load_input_audio(b64, "wav")


async def test_unknown_modality():
    with pytest.raises(MediaError, match="unknown media kind 'pdf'"):
        await new_loader().load("pdf", data_uri("a.png"))


def test_item_count_limit():
    limits = MediaLimits(max_items_per_request=2)
    limits.check_item_count(2)
    with pytest.raises(MediaLimitError, match="3 media items; the limit is 2 per request"):
        limits.check_item_count(3)


async def test_default_policy_refuses_loopback_urls(server):
    loader = MediaLoader(FetchPolicy(), MediaCache())
    with pytest.raises(MediaError, match="non-public address"):
        await loader.load("image", f"{server.url}/a.png")


async def test_warmup_imports_the_decoders():
    import sys

    await new_loader().warmup()
    assert "torchcodec.decoders" in sys.modules
