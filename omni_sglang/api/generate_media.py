"""Media in SGLang's native ``/generate``: ``image_data``, ``video_data``, ``audio_data``.

Shapes, as SGLang's ``GenerateReqInput`` takes them:

- one prompt (``text`` a string, ``input_ids`` a flat list): an item, or a list of items;
- a batch (``text`` a list): a list with one entry per prompt, each an item, a list of
  items or null; or a single item, which every prompt gets (the SGLang frontend's
  ``select`` sends its choices that way).

An item is a string: an http(s) URL, a ``data:`` URI, or bare base64 (what the frontend's
``sgl.image`` sends: the file's bytes base64-encoded, no ``data:`` prefix). Every item
goes through the server's media loader, so the chat endpoint's SSRF guard, size, pixel,
duration and count limits all apply: a string with a URL scheme is handed to the loader
as it is (it refuses what the chat endpoint refuses), bare base64 becomes
``data:;base64,<payload>``. That URI declares no MIME type on purpose: the loader sniffs
the bytes and checks they are the field's kind (``image_data`` must hold an image), so a
declared type would add nothing. Local file paths are never read (they are not base64).

The prompt text holds one placeholder per item (the modality processor's, which its chat
template writes for media parts: ``<image>``, ``<video>``, ``<so_embedding>`` for Nemotron
Omni). Each placeholder takes the next item of its kind, as in SGLang, so the fields need
not be interleaved by the client.

``input_ids`` with media: the ids are decoded to text (special tokens kept, so the
placeholders survive) and re-tokenized around the expanded media; the ids must therefore
round-trip through the tokenizer, which canonical tokenizations do.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from omni_sglang.adapter.engine_media import attach_media
from omni_sglang.adapter.media import MediaInputs
from omni_sglang.engines.base import EngineRequest
from omni_sglang.errors import ClientError, InvalidRequestError
from omni_sglang.media import LoadedMedia, MediaError
from omni_sglang.metrics import MEDIA_PREP
from omni_sglang.plugin_api import MediaItem
from omni_sglang.protocol.sglang import GenerateRequest
from omni_sglang.state import ServerState

FIELDS = {"image_data": "image", "video_data": "video", "audio_data": "audio"}
_ALLOWED = "a string: an http(s) URL, a data: URI or base64-encoded media"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_BASE64_HEAD = re.compile(r"[A-Za-z0-9+/=_\-\s]*")
_BARE = "data:;base64,"  # bare base64: no declared type, the loader sniffs the bytes


@dataclass(frozen=True)
class _Item:
    field: str
    value: str
    label: str  # where the client put it, for messages: "image_data[1][0]"

    @property
    def modality(self) -> str:
        return FIELDS[self.field]


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "an empty string" if value == "" else type(value).__name__


def _one(field: str, value: Any, label: str) -> _Item:
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(
            f"{label} is {_describe(value)}; each {field} item must be {_ALLOWED}", field
        )
    return _Item(field, value, label)


def _entry(field: str, entry: Any, label: str) -> list[_Item]:
    """One prompt's entry: an item, a list of items, or null."""
    if entry is None:
        return []
    if isinstance(entry, list):
        return [_one(field, value, f"{label}[{j}]") for j, value in enumerate(entry)]
    return [_one(field, entry, label)]


def split_media(req: GenerateRequest) -> list[list[_Item]]:
    """Each prompt's media items, by field (images, then videos, then audio)."""
    n = req.batch_size
    prompts: list[list[_Item]] = [[] for _ in range(n)]
    for field in FIELDS:
        value = getattr(req, field)
        if value is None or value == []:
            continue
        if not req.is_batch:
            prompts[0] += _entry(field, value, field)
        elif isinstance(value, list):
            if len(value) != n:
                raise InvalidRequestError(
                    f"'{field}' has {len(value)} entries for a batch of {n} prompts; give one "
                    "entry per prompt (an item, a list of items, or null), or a single item "
                    f"for every prompt; an item is {_ALLOWED}",
                    field,
                )
            for i, entry in enumerate(value):
                prompts[i] += _entry(field, entry, f"{field}[{i}]")
        else:
            shared = _entry(field, value, field)
            for items in prompts:
                items += shared
    return prompts


def _loader_url(item: _Item) -> str:
    value = item.value
    if value[:6].lower() == "video:":
        raise InvalidRequestError(
            f"{item.label} is the SGLang frontend's sgl.video encoding (sampled frames as "
            "concatenated PNGs), which this server does not decode; send the video file "
            "itself in video_data (base64, a data: URI or a URL) with a <video> placeholder",
            item.field,
        )
    if _SCHEME.match(value):
        return value  # a URL: the loader applies the chat endpoint's rules to it
    if not _BASE64_HEAD.fullmatch(value[:256]):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InvalidRequestError(
            f"{item.label} ({shown!r}) is not an http(s) URL, a data: URI or base64; each "
            f"{item.field} item must be {_ALLOWED} (this server reads no local files)",
            item.field,
        )
    return _BARE + value


def _placed(text: str, items: list[_Item], marks: dict[str, str], where: str) -> list[_Item]:
    """``items`` in placeholder order: each placeholder takes the next item of its kind."""
    by_kind: dict[str, list[_Item]] = {}
    for item in items:
        by_kind.setdefault(item.modality, []).append(item)
    mark_of = {kind: mark for mark, kind in marks.items()}
    if not set(by_kind) <= set(mark_of):
        return items  # a kind the template names no placeholder for: the processor checks
    pattern = re.compile("|".join(re.escape(m) for m in sorted(marks, key=len, reverse=True)))
    found = [marks[m.group()] for m in pattern.finditer(text)]
    for kind, mark in mark_of.items():
        want = len(by_kind.get(kind, []))
        have = found.count(kind)
        if have != want:
            field = next(f for f, k in FIELDS.items() if k == kind)
            raise InvalidRequestError(
                f"{where} has {have} {mark!r} placeholder(s) for {want} {field} item(s); put "
                f"one {mark!r} in the text where each {kind} item goes",
                field,
            )
    queues = {kind: list(reversed(group)) for kind, group in by_kind.items()}
    return [queues[kind].pop() for kind in found]


def _prompt_text(state: ServerState, request: EngineRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    ids = request.input_ids or []
    if not ids:
        raise InvalidRequestError("the prompt is empty", "input_ids")
    limit = len(state.tokenizer)
    if any(not 0 <= t < limit for t in ids):
        raise InvalidRequestError(f"input_ids must be token ids in [0, {limit})", "input_ids")
    return str(state.tokenizer.decode(ids, skip_special_tokens=False))


async def _load(state: ServerState, item: _Item, url: str) -> LoadedMedia:
    loader = state.media_loader
    options: dict[str, Any] = {}
    if item.modality == "video":
        video = state.config.media_io_kwargs.get("video")
        options = {
            **(video if isinstance(video, dict) else {}),
            "use_audio_in_video": False,
            "decode_frames": not state.engine.expands_media,  # SGLang decodes it itself
        }
    try:
        loaded: LoadedMedia = await loader.load(item.modality, url, options)
        return loaded
    except MediaError as exc:
        # The loader words its messages for chat parts ("the image_url part ...", "data
        # URI ..."): say what the client sent instead.
        message = exc.message.replace(f"the {item.modality}_url part", item.label)
        if url.startswith(_BARE):
            message = message.replace("data URI base64 payload", "base64 data")
            message = message.replace("data URI", "base64 data")
            if "not valid base64" in message:
                message += " (a string that is not a URL is read as base64; no local files)"
        if not message.startswith(item.label):
            message = f"{item.label}: {message}"
        raise type(exc)(message, item.field) from None


def _media_item(state: ServerState, media: LoadedMedia) -> MediaItem:
    options: dict[str, Any] = {"content_hash": media.content_hash}
    if media.modality == "video":
        options["use_audio_in_video"] = False
        options["video_pruning_rate"] = state.config.video_pruning_rate
    return MediaItem(media.modality, media.data, options, source=media.source)


async def attach_generate_media(
    req: GenerateRequest, state: ServerState, requests: list[EngineRequest]
) -> list[str]:
    """Load the request's media and put it into the prompts that have some (their
    ``input_ids`` and media fields); returns the media warnings. Prompts without media
    are left as they are."""
    prompts = split_media(req)
    if not any(prompts):
        return []
    first = next(f for f in FIELDS if getattr(req, f) not in (None, []))
    if state.modality is None or state.media_loader is None:
        raise InvalidRequestError("this server has no media support configured", first)
    limits = state.media_loader.limits
    distinct: dict[tuple[str, str], tuple[_Item, str]] = {}  # each item with its URL
    ordered: list[list[_Item]] = []
    marks = state.modality.placeholders()
    texts: list[str] = []
    for i, (items, request) in enumerate(zip(prompts, requests, strict=True)):
        text = _prompt_text(state, request) if items else ""
        texts.append(text)
        if not items:
            ordered.append([])
            continue
        limits.check_item_count(len(items))
        state.check_prompt_chars(len(text))
        where = "the text" if request.prompt is not None else "the decoded input_ids"
        where += f" of prompt {i}" if req.is_batch else ""
        ordered.append(_placed(text, items, marks, where))
        for item in items:
            if (item.field, item.value) not in distinct:
                distinct[(item.field, item.value)] = (item, _loader_url(item))
    limits.check_item_count(len(distinct))  # a shared item is fetched and decoded once

    started = time.monotonic()
    loaded = await asyncio.gather(*(_load(state, item, url) for item, url in distinct.values()))
    media = dict(zip(distinct, loaded, strict=True))
    warnings: list[str] = []
    for key in distinct:
        warnings += media[key].warnings
    for i, (text, items, request) in enumerate(zip(texts, ordered, requests, strict=True)):
        if not items:
            continue
        inputs = MediaInputs(
            [_media_item(state, media[(item.field, item.value)]) for item in items]
        )
        request.prompt, request.input_ids = None, None
        try:
            await attach_media(state, text, inputs, request)
        except ClientError as exc:
            message = f"prompt {i}: {exc.message}" if req.is_batch else exc.message
            param = first if exc.param in (None, "messages") else exc.param
            raise type(exc)(message, param, code=exc.code) from None
    MEDIA_PREP.observe(time.monotonic() - started)
    return warnings
