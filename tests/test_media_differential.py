"""The same media, the same options, both engines: the CPU engine (our modality
processor expands the prompt, the tiny linear encoders) and SGLang (its Nemotron Omni
processor, our subclass, expands it; its model code runs RADIO and Parakeet on
``tiny-omni``). What must agree is what the model is given: the prompt's length, each
modality's token count, and, token for token, the prompt text around the media (a
video's frame timestamps are text there: the frames our sampler chose are the frames
SGLang's model receives). What cannot agree, and is not compared: the generated text
(the two checkpoints' media encoders differ; their language model is the same)."""

from __future__ import annotations

import base64
import functools
import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from transformers import AutoTokenizer

from omni_sglang.media import synth
from tests.conftest import TINY, Server, engine_args
from tests.test_sglang_generate_media import PLACEHOLDER

#: 10 fps sources sampled at 3 fps: frame choice and timestamps are not multiples of a
#: half second, so a sampler that picked other frames would show in the timestamps.
SERVER_VIDEO = json.dumps({"video": {"fps": 3.0}})
SAMPLES = {
    "a.jpg": ("image", "image/jpeg", lambda: synth.image_bytes("JPEG", (64, 48))),
    "a.png": ("image", "image/png", lambda: synth.image_bytes("PNG", (300, 90))),
    "a.gif": ("image", "image/gif", lambda: synth.image_bytes("GIF", (40, 70), frames=2)),
    "v.mp4": ("video", "video/mp4", lambda: synth.video_bytes(3.3, (160, 120), 10)),
    "av.mp4": ("video", "video/mp4", lambda: synth.video_bytes(2.0, (96, 160), 10, audio=True)),
    "a.wav": ("audio", "audio/wav", lambda: synth.audio_bytes("wav", 1.7)),
    "a.mp3": ("audio", "audio/mpeg", lambda: synth.audio_bytes("mp3", 2.2)),
    "a.flac": ("audio", "audio/flac", lambda: synth.audio_bytes("flac", 0.9)),
}


@functools.cache
def data(name: str) -> bytes:
    return SAMPLES[name][2]()


def data_uri(name: str) -> str:
    return f"data:{SAMPLES[name][1]};base64," + base64.b64encode(data(name)).decode()


def part(name: str) -> dict[str, Any]:
    kind = SAMPLES[name][0]
    return {"type": f"{kind}_url", f"{kind}_url": {"url": data_uri(name)}}


@pytest.fixture(scope="module")
def servers(module_server_factory) -> dict[str, Server]:  # type: ignore[no-untyped-def]
    args = ("--no-warmup", "--media-io-kwargs", SERVER_VIDEO)
    return {e: module_server_factory(*engine_args(e, *args)) for e in ("cpu", "sglang")}


def usage(server: Server, parts: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    body = {
        "model": TINY,
        "max_tokens": 1,
        "chat_template_kwargs": {"enable_thinking": False},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "See:"}, *parts]}],
        **fields,
    }
    resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=180)
    assert resp.status_code == 200, resp.text
    found = resp.json()["usage"]
    # Not cached_tokens: only SGLang has a prefix cache, and it depends on what ran before.
    media = {k: v for k, v in found["prompt_tokens_details"].items() if k != "cached_tokens"}
    return {"prompt_tokens": found["prompt_tokens"], **media}


def both(servers: dict[str, Server], parts: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    cpu, sglang = (usage(servers[e], parts, **fields) for e in ("cpu", "sglang"))
    assert cpu == sglang
    return cpu


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_format_expands_alike(servers: dict[str, Server], name: str) -> None:
    got = both(servers, [part(name)])
    assert got[f"{SAMPLES[name][0]}_tokens"] > 0


@pytest.mark.parametrize(
    "fields",
    [
        {"media_io_kwargs": {"video": {"fps": 1.5, "num_frames": -1}}},
        {"media_io_kwargs": {"video": {"num_frames": 5, "fps": -1}}},
        {"media_io_kwargs": {"video": {"fps": 4.0, "num_frames": 3}}},
        {"mm_processor_kwargs": {"video_pruning_rate": 0.0}},
        {"mm_processor_kwargs": {"video_pruning_rate": 0.5}},
        {"mm_processor_kwargs": {"video_pruning_rate": 0.9}},
    ],
    ids=["fps", "num_frames", "both", "evs0", "evs05", "evs09"],
)
def test_video_options_expand_alike(servers: dict[str, Server], fields: dict[str, Any]) -> None:
    assert both(servers, [part("v.mp4")], **fields)["video_tokens"] > 0


def test_evs_keeps_the_tokens_the_rate_implies(servers: dict[str, Server]) -> None:
    """EVS keeps max(one tubelet, int(all * (1 - rate))) on both engines (FACTS.md)."""
    video = {"media_io_kwargs": {"video": {"num_frames": 8, "fps": -1}}}
    tubelet = {"media_io_kwargs": {"video": {"num_frames": 2, "fps": -1}}}
    per = both(servers, [part("v.mp4")], **tubelet)["video_tokens"]
    for rate in (0.0, 0.5, 0.9):
        evs = {"video_pruning_rate": rate}
        got = both(servers, [part("v.mp4")], mm_processor_kwargs=evs, **video)
        assert got["video_tokens"] == max(per, int(per * 4 * (1 - rate)))


def test_soundtrack_and_mixed_turns_expand_alike(servers: dict[str, Server]) -> None:
    soundtrack = {"mm_processor_kwargs": {"use_audio_in_video": True}}
    with_sound = both(servers, [part("av.mp4")], **soundtrack)
    assert with_sound["audio_tokens"] > 0 and with_sound["video_tokens"] > 0
    assert "audio_tokens" not in both(servers, [part("av.mp4")])
    mixed = both(servers, [part("a.jpg"), part("a.mp3"), part("v.mp4"), part("a.png")])
    assert min(mixed["image_tokens"], mixed["audio_tokens"], mixed["video_tokens"]) > 0


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> Any:
    """Both checkpoints' tokenizer (tiny-omni is built with tiny's)."""
    return AutoTokenizer.from_pretrained(str(tiny_model_path))


def prompt_seen(server: Server, tokenizer: Any, text: str, **media: Any) -> list[int | None]:
    """The prompt the model was given (its input logprobs' ids), media positions as
    None: the CPU engine reports the placeholder token there, SGLang id 0 (the positions
    hold each item's hash-derived pad value there, not a token; 0 is ``<pad>``, which
    the tiny tokenizer never writes for text)."""
    body = {
        "text": text,
        "return_logprob": True,
        "logprob_start_len": 0,
        "sampling_params": {"max_new_tokens": 1},
        **media,
    }
    resp = httpx.post(server.url + "/generate", json=body, timeout=180)
    assert resp.status_code == 200, resp.text
    meta = resp.json()["meta_info"]
    placeholders = {tokenizer.convert_tokens_to_ids(t) for t in PLACEHOLDER.values()}
    ids = [entry[1] for entry in meta["input_token_logprobs"]]
    assert len(ids) == meta["prompt_tokens"]
    return [None if t in placeholders or t == 0 else t for t in ids]


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("video_data", ["v.mp4"]),
        ("video_data", ["av.mp4"]),
        ("image_data", ["a.png", "a.gif"]),
        ("audio_data", ["a.wav"]),
    ],
)
def test_the_model_is_given_the_same_prompt(
    servers: dict[str, Server], tokenizer: Any, field: str, names: list[str]
) -> None:
    """Token for token, text and timestamps included, and as many media positions.
    Images and audio: media runs of the same lengths too. A video at the server's EVS
    rate (0.5, NIM's default) keeps as many tokens on both, but which tubelet keeps
    how many follows each engine's own dissimilarity measure: SGLang's model prunes its
    RADIO embeddings and redistributes the placeholders
    (``redistribute_pruned_frames_placeholders``), our CPU path prunes its features.
    Each placeholder stands on its own line: see the next test for why."""
    kind = SAMPLES[names[0]][0]
    text = "Look:\n" + "\nand\n".join(PLACEHOLDER[kind] for _ in names) + "\ndone."
    items = [base64.b64encode(data(n)).decode() for n in names]
    cpu, sglang = (
        prompt_seen(servers[e], tokenizer, text, **{field: items}) for e in ("cpu", "sglang")
    )
    assert [t for t in cpu if t is not None] == [t for t in sglang if t is not None]
    assert cpu.count(None) == sglang.count(None) > 0
    if kind != "video":
        assert cpu == sglang
        runs = [len(list(run)) for tok, run in itertools.groupby(cpu) if tok is None]
        assert len(runs) == len(names)
    if kind == "video":  # the timestamps of the frames sampled at the server's 3 fps
        seen = tokenizer.decode([t for t in cpu if t is not None])
        assert "sampled at 0.00 seconds" in seen and "sampled at 0.30 seconds" in seen


def test_sglang_tokenizes_a_video_expansion_apart_from_the_text_before_it(
    servers: dict[str, Server], tokenizer: Any
) -> None:
    """The one difference found. A video expands to text (``Frame 1 sampled at ...``)
    around its image tokens. Our CPU path, like transformers' processors and vLLM,
    replaces the placeholder in the text and tokenizes the whole; SGLang's processor,
    given token ids (which our adapter sends: SGLang's text path puts every image at the
    first placeholder), tokenizes each expansion on its own and splices it in. Where the
    text before ends in a space, BPE merges it into the expansion's first word on the
    CPU path (`` Frame``) and not on SGLang (`` `` + ``Frame``): one token more, the same
    text. Chat templates put media after a newline, where both tokenize alike."""
    video = base64.b64encode(data("v.mp4")).decode()
    cpu, sglang = (
        prompt_seen(servers[e], tokenizer, "Look: <video> done.", video_data=[video])
        for e in ("cpu", "sglang")
    )
    assert len(sglang) == len(cpu) + 1
    text = [tokenizer.decode([t for t in ids if t is not None]) for ids in (cpu, sglang)]
    assert text[0] == text[1] and "Look: Frame 1 sampled at 0.00 seconds" in text[0]
