"""Images, video and audio through HTTP on both engines: formats, sampling controls,
audio-in-video, EVS, the shared-video batch, and refusals. On the sglang engine SGLang's
own Nemotron Omni processor (our subclass) and model code (``tiny-omni``) do the
placeholder expansion and the encoders; the assertions are the same."""

from __future__ import annotations

import asyncio
import base64
import functools
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from omni_sglang.media import synth
from omni_sglang.media.testserver import MediaServer
from tests.conftest import TINY, Server, engine_args

SAMPLES = {
    "a.jpg": ("image_url", "image/jpeg", lambda: synth.image_bytes("JPEG", (64, 48))),
    "a.png": ("image_url", "image/png", lambda: synth.image_bytes("PNG", (64, 48))),
    "a.gif": ("image_url", "image/gif", lambda: synth.image_bytes("GIF", (64, 48), frames=2)),
    "v.mp4": ("video_url", "video/mp4", lambda: synth.video_bytes(4.0, (160, 120), 10)),
    "av.mp4": (
        "video_url",
        "video/mp4",
        lambda: synth.video_bytes(4.0, (160, 120), 10, audio=True),
    ),
    "a.wav": ("audio_url", "audio/wav", lambda: synth.audio_bytes("wav", 2.0)),
    "a.mp3": ("audio_url", "audio/mpeg", lambda: synth.audio_bytes("mp3", 2.0)),
    "a.flac": ("audio_url", "audio/flac", lambda: synth.audio_bytes("flac", 2.0)),
}


@functools.cache
def data(name: str) -> bytes:
    return SAMPLES[name][2]()


def data_uri(name: str, mime: str | None = None) -> str:
    return f"data:{mime or SAMPLES[name][1]};base64," + base64.b64encode(data(name)).decode()


def part(name: str, url: str) -> dict[str, Any]:
    kind = SAMPLES[name][0]
    return {"type": kind, kind: {"url": url}}


@pytest.fixture(scope="module")
def media() -> Any:
    with MediaServer({f"/{n}": data(n) for n in SAMPLES}, delay=0.05) as srv:
        yield srv


@pytest.fixture(scope="module")
def server(module_server_factory, media_engine: str) -> Server:  # type: ignore[no-untyped-def]
    return module_server_factory(  # type: ignore[no-any-return]
        *engine_args(media_engine, "--allow-private-media-hosts", "--no-warmup")
    )


@pytest.fixture(scope="module")
def guarded(module_server_factory, media_engine: str) -> Server:  # type: ignore[no-untyped-def]
    """A server with the SSRF guard on (the default)."""
    return module_server_factory(*engine_args(media_engine, "--no-warmup"))  # type: ignore[no-any-return]


def ask(server: Server, parts: list[dict[str, Any]], **fields: Any) -> httpx.Response:
    body = {
        "model": TINY,
        "max_tokens": 2,
        "chat_template_kwargs": {"enable_thinking": False},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Describe."}, *parts]}],
        **fields,
    }
    return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)


def details(resp: httpx.Response) -> dict[str, int]:
    """The media token counts (not cached_tokens: the same bytes a second time may come
    from SGLang's prefix cache)."""
    assert resp.status_code == 200, resp.text
    found = resp.json()["usage"]["prompt_tokens_details"]
    return {k: v for k, v in found.items() if k != "cached_tokens"}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_format_by_data_uri_and_url(server: Server, media: Any, name: str) -> None:
    kind = SAMPLES[name][0].split("_")[0]
    by_uri = details(ask(server, [part(name, data_uri(name))]))
    by_url = details(ask(server, [part(name, media.url + f"/{name}")]))
    assert by_uri == by_url and by_uri[f"{kind}_tokens"] > 0


def test_input_audio_and_mixed_conversation(server: Server, media: Any) -> None:
    wav = base64.b64encode(data("a.wav")).decode()
    one = details(
        ask(server, [{"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}}])
    )
    assert (
        one["audio_tokens"]
        == details(ask(server, [part("a.wav", data_uri("a.wav"))]))["audio_tokens"]
    )
    body = {
        "model": TINY,
        "max_tokens": 2,
        "chat_template_kwargs": {"enable_thinking": False},
        "messages": [
            {
                "role": "user",
                "content": [
                    part("a.jpg", data_uri("a.jpg")),
                    {"type": "text", "text": "and"},
                    part("a.png", media.url + "/a.png"),
                    part("a.mp3", data_uri("a.mp3")),
                ],
            },
            {"role": "assistant", "content": "Two images and a tone."},
            {
                "role": "user",
                "content": [
                    part("v.mp4", media.url + "/v.mp4"),
                    {"type": "text", "text": "And this?"},
                ],
            },
        ],
    }
    resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
    got = details(resp)
    image = details(ask(server, [part("a.jpg", data_uri("a.jpg"))]))["image_tokens"]
    assert got["image_tokens"] == 2 * image and got["video_tokens"] > 0 and got["audio_tokens"] > 0


def tubelet_tokens(server: Server) -> int:
    """Tokens of one 2-frame tubelet for v.mp4 (the tiny config, this aspect ratio)."""
    one = ask(
        server,
        [part("v.mp4", data_uri("v.mp4"))],
        media_io_kwargs={"video": {"num_frames": 2, "fps": -1}},
        mm_processor_kwargs={"video_pruning_rate": 0.0},
    )
    return details(one)["video_tokens"]


@pytest.mark.parametrize(
    ("video", "frames"),
    [
        (None, 8),  # default 2 fps over 4 s
        ({"fps": 1.0, "num_frames": -1}, 4),
        ({"num_frames": 6, "fps": -1}, 6),
        ({"fps": 1.0, "num_frames": 6}, 6),  # both: the larger count wins
        ({"fps": 3.0, "num_frames": 2}, 12),
    ],
)
def test_video_sampling_controls(server: Server, video: Any, frames: int) -> None:
    fields = {"media_io_kwargs": {"video": video}} if video else {}
    got = details(
        ask(
            server,
            [part("v.mp4", data_uri("v.mp4"))],
            mm_processor_kwargs={"video_pruning_rate": 0.0},
            **fields,
        )
    )
    assert got["video_tokens"] == frames // 2 * tubelet_tokens(server)


def test_num_frames_above_cap_is_refused(server: Server) -> None:
    resp = ask(
        server,
        [part("v.mp4", data_uri("v.mp4"))],
        media_io_kwargs={"video": {"num_frames": 500, "fps": -1}},
    )
    assert resp.status_code == 400 and "128" in resp.json()["error"]["message"]


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.9])
def test_efficient_video_sampling(server: Server, rate: float) -> None:
    per, tubelets = tubelet_tokens(server), 4  # 8 frames at the default 2 fps
    got = details(
        ask(
            server,
            [part("v.mp4", data_uri("v.mp4"))],
            mm_processor_kwargs={"video_pruning_rate": rate},
        )
    )
    # FACTS.md's EVS rule: keep max(one tubelet, int(all * (1 - rate))).
    assert got["video_tokens"] == max(per, int(per * tubelets * (1 - rate)))
    assert rate == 0.0 or got["video_tokens"] < per * tubelets


def test_audio_in_video_with_and_without_sound(server: Server) -> None:
    with_sound = ask(
        server,
        [part("av.mp4", data_uri("av.mp4"))],
        mm_processor_kwargs={"use_audio_in_video": True},
    )
    assert details(with_sound).get("audio_tokens", 0) > 0
    assert "Warning" not in with_sound.headers
    silent = ask(
        server, [part("v.mp4", data_uri("v.mp4"))], mm_processor_kwargs={"use_audio_in_video": True}
    )
    assert details(silent).get("audio_tokens", 0) == 0
    assert "no audio" in silent.headers.get("Warning", "").lower()


def test_seed_batched_example_decodes_the_video_once(server: Server, media: Any) -> None:
    """The seed's batch: one video URL, two prompts at once -> one fetch, one decode."""
    media.files["/shared.mp4"] = synth.video_bytes(3.0, (160, 120), 10)
    fetched = media.hits.get("/shared.mp4", 0)  # the media server serves both engines' runs
    before = httpx.get(server.url + "/server_info").json()["media_cache"]
    client = AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)

    async def one(prompt: str) -> Any:
        return await client.chat.completions.create(
            model=TINY,
            max_tokens=8,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": prompt},
                        {"type": "video_url", "video_url": {"url": media.url + "/shared.mp4"}},
                    ],
                }
            ],
        )

    async def both() -> list[Any]:
        return await asyncio.gather(
            one("What is happening in this video?"), one("Describe the main objects in this video.")
        )

    results = asyncio.run(both())
    assert all(r.choices[0].message.content is not None for r in results)
    after = httpx.get(server.url + "/server_info").json()["media_cache"]
    assert media.hits["/shared.mp4"] - fetched == 1  # ours, once: SGLang never fetches
    assert after["decodes"] - before["decodes"] == 1


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://10.0.0.1/a.jpg", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::ffff:192.168.0.1]/a.jpg", "private"),
        ("file:///etc/passwd", "file://"),
        ("ftp://example.com/a.jpg", "not supported"),
    ],
)
def test_refusals_keep_the_server_serving(guarded: Server, url: str, fragment: str) -> None:
    resp = ask(guarded, [{"type": "image_url", "image_url": {"url": url}}])
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["error"]["message"].lower()
    assert httpx.get(guarded.url + "/v1/health/ready").status_code == 200


@pytest.mark.parametrize(
    ("parts_", "fragment"),
    [
        ([part("a.png", data_uri("a.jpg", "image/png"))], "jpeg"),
        (
            [
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "data:image/jpeg;base64,"
                        + base64.b64encode(data("a.jpg")[:200]).decode()
                    },
                }
            ],
            "image",
        ),
        ([{"type": "video_url", "video_url": {"url": data_uri("a.jpg")}}], "video"),
        ([{"type": "audio_url", "audio_url": {"url": "data:audio/wav;base64,AAAA"}}], "audio"),
    ],
)
def test_bad_media_is_a_400(server: Server, parts_: list[Any], fragment: str) -> None:
    resp = ask(server, parts_)
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["error"]["message"].lower()


@pytest.mark.parametrize(
    "fields",
    [
        {"media_io_kwargs": {"image": {}}},
        {"media_io_kwargs": {"video": {"speed": 2}}},
        {"mm_processor_kwargs": {"use_audio_in_video": "yes"}},
        {"mm_processor_kwargs": {"video_pruning_rate": 1.5}},
        {"mm_processor_kwargs": {"frobnicate": 1}},
    ],
)
def test_bad_media_options(server: Server, fields: dict[str, Any]) -> None:
    resp = ask(server, [part("v.mp4", data_uri("v.mp4"))], **fields)
    assert resp.status_code == 400, resp.text


def test_openai_sdk_seed_style_request(server: Server, media: Any) -> None:
    client = OpenAI(base_url=server.url + "/v1", api_key="not-used", max_retries=0)
    resp = client.chat.completions.create(
        model="nvidia/nemotron-3-nano-omni-30b-a3b-reasoning",
        max_tokens=16,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": media.url + "/a.jpg"}},
                ],
            }
        ],  # type: ignore[list-item]
        extra_body={"media_io_kwargs": {"video": {"fps": 1.0, "num_frames": -1}}},
    )
    assert resp.choices[0].message.role == "assistant"
