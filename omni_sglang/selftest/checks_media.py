"""Checks of the seed's media examples: every format by base64 and by URL, video frame
sampling (``media_io_kwargs``), EVS (``mm_processor_kwargs.video_pruning_rate``), audio in
video, multi-turn with an image and the batched video example. They judge the media
token counts the server reports in ``usage.prompt_tokens_details``, never the answer."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from omni_sglang.selftest.context import Context, media_tokens
from omni_sglang.selftest.result import CheckSkipped, expect

NO_EVS = {"video_pruning_rate": 0.0}


def _tokens(ctx: Context, name: str, kind: str, **fields: Any) -> int:
    answer = ctx.ask("Describe this.", ctx.part(name), **fields)
    return media_tokens(answer, kind)


def images(ctx: Context, metrics: dict[str, Any]) -> str:
    counts = {name: _tokens(ctx, name, "image") for name in ("image.jpg", "image.png", "image.gif")}
    expect(all(n > 0 for n in counts.values()), f"an image gave no image tokens: {counts}")
    two = media_tokens(ctx.ask("Compare.", ctx.part("image.jpg"), ctx.part("image.png")), "image")
    expect(
        two == counts["image.jpg"] + counts["image.png"],
        f"two images gave {two} tokens, alone {counts['image.jpg']} + {counts['image.png']}",
    )
    metrics.update(image_tokens=counts)
    return "image tokens: " + ", ".join(f"{k} {v}" for k, v in counts.items())


def media_by_url(ctx: Context, metrics: dict[str, Any]) -> str:
    name = "image.png"
    resp = ctx.client.post(
        "/v1/chat/completions",
        {
            "model": ctx.client.model,
            "max_tokens": 8,
            "chat_template_kwargs": {"enable_thinking": False},
            "messages": [{"role": "user", "content": [ctx.part(name, ctx.url(name))]}],
        },
    )
    if resp.status_code == 400 and "non-public address" in resp.text and not ctx.owns_server:
        raise CheckSkipped(
            "the server refuses this machine's 127.0.0.1 (its SSRF guard); start it with "
            "--allow-private-media-hosts, or let the selftest start it, to check URLs"
        )
    by_url = media_tokens(ctx.client.ok_json(resp), "image")
    by_data = _tokens(ctx, name, "image")
    expect(by_url == by_data, f"by URL {by_url} image tokens, by base64 {by_data}")
    return f"fetched; {by_url} image tokens, as by base64"


def video(ctx: Context, metrics: dict[str, Any]) -> str:
    start = time.monotonic()
    answer = ctx.ask("What is happening in this video?", ctx.part("video.mp4"))
    seconds = time.monotonic() - start
    tokens = media_tokens(answer, "video")
    expect(tokens > 0, "a 10 s video gave no video tokens")
    expect(media_tokens(answer, "audio") == 0, "audio tokens without use_audio_in_video")
    metrics.update(video_tokens=tokens, request_s=seconds)
    return f"{tokens} video tokens; request {seconds:.2f} s"


def video_sampling(ctx: Context, metrics: dict[str, Any]) -> str:
    """``num_frames`` doubles, video tokens double (EVS off, so nothing is pruned)."""
    counts = {}
    for frames in (4, 8):
        io = {"video": {"num_frames": frames, "fps": -1}}
        counts[frames] = _tokens(
            ctx, "video.mp4", "video", media_io_kwargs=io, mm_processor_kwargs=NO_EVS
        )
    expect(counts[8] == 2 * counts[4] > 0, f"video tokens for 4 and 8 frames: {counts}")
    fps = _tokens(
        ctx,
        "video.mp4",
        "video",
        media_io_kwargs={"video": {"fps": 0.4, "num_frames": -1}},
        mm_processor_kwargs=NO_EVS,
    )
    expect(fps == counts[4], f"fps 0.4 over 10 s gave {fps} tokens, 4 frames {counts[4]}")
    metrics.update(video_tokens_by_frames=counts)
    return f"4 frames {counts[4]} tokens, 8 frames {counts[8]}, fps 0.4 {fps}"


def efficient_video_sampling(ctx: Context, metrics: dict[str, Any]) -> str:
    counts = {}
    for rate in (0.0, 0.5):
        resp = ctx.client.post(
            "/v1/chat/completions",
            {
                "model": ctx.client.model,
                "max_tokens": 8,
                "chat_template_kwargs": {"enable_thinking": False},
                "messages": [{"role": "user", "content": [ctx.part("video.mp4")]}],
                "mm_processor_kwargs": {"video_pruning_rate": rate},
            },
        )
        if resp.status_code == 400 and "video_pruning_rate" in resp.text:
            raise CheckSkipped(
                f"the server does not prune video per request: {resp.json()['error']['message']}"
            )
        counts[rate] = media_tokens(ctx.client.ok_json(resp), "video")
    full, pruned = counts[0.0], counts[0.5]
    # About half is kept (EVS keeps at least one frame group; rounding moves a few).
    expect(0 < pruned < full, f"EVS 0.5 kept {pruned} of {full} video tokens")
    expect(
        abs(pruned - full / 2) <= full * 0.15, f"EVS 0.5 kept {pruned} of {full}: not about half"
    )
    metrics.update(video_tokens_by_rate={str(k): v for k, v in counts.items()})
    return f"video tokens: {full} at rate 0, {pruned} at 0.5"


def audio(ctx: Context, metrics: dict[str, Any]) -> str:
    counts = {
        name: _tokens(ctx, name, "audio") for name in ("audio.wav", "audio.mp3", "audio.flac")
    }
    expect(all(n > 0 for n in counts.values()), f"an audio file gave no audio tokens: {counts}")
    import base64

    wav = base64.b64encode(ctx.data("audio.wav")).decode()
    inline = {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}}
    expect(
        media_tokens(ctx.ask("Transcribe.", inline), "audio") == counts["audio.wav"],
        "input_audio and audio_url of the same WAV differ",
    )
    metrics.update(audio_tokens=counts)
    return "audio tokens: " + ", ".join(f"{k} {v}" for k, v in counts.items())


def audio_in_video(ctx: Context, metrics: dict[str, Any]) -> str:
    on = {"use_audio_in_video": True}
    with_sound = ctx.ask(
        "Describe, including any speech.", ctx.part("video.mp4"), mm_processor_kwargs=on
    )
    heard = media_tokens(with_sound, "audio")
    expect(heard > 0, "use_audio_in_video on a video with sound added no audio tokens")
    silent = ctx.ask("Describe.", ctx.part("silent.mp4"), mm_processor_kwargs=on)
    expect(media_tokens(silent, "audio") == 0, "a video without sound gave audio tokens")
    metrics.update(audio_tokens=heard)
    return f"{heard} audio tokens from the soundtrack; none from a silent video"


def multi_turn(ctx: Context, metrics: dict[str, Any]) -> str:
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is in this image?"}, ctx.part("image.jpg")],
        },
        {"role": "assistant", "content": "This image shows a boardwalk in a field of tall grass."},
        {"role": "user", "content": "What would be the best season to visit this place?"},
    ]
    answer = ctx.client.chat(messages=messages, max_tokens=ctx.max_tokens)
    expect(media_tokens(answer, "image") > 0, "the first turn's image was not counted")
    return f"{answer['usage']['prompt_tokens']} prompt tokens over three turns"


def batched_video(ctx: Context, metrics: dict[str, Any]) -> str:
    """The seed's batched example: concurrent requests with the same video."""
    prompts = ["What is happening in this video?", "Describe the main objects in this video."]
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
        answers = list(
            pool.map(lambda p: ctx.ask(p, ctx.part("video.mp4"), max_tokens=16), prompts)
        )
    seconds = time.monotonic() - start
    counts = {media_tokens(a, "video") for a in answers}
    expect(len(counts) == 1 and counts != {0}, f"the same video gave {counts} tokens")
    metrics.update(seconds=seconds)
    return f"{len(prompts)} concurrent requests in {seconds:.2f} s"
