"""SGLang's Nemotron Omni processor with per-request video options.

SGLang 0.5.23's ``NanoNemotronVLImageProcessor`` samples every video at 2 fps with at
most 128 frames (module constants) and prunes at the server's EVS rate. This subclass
reads, per video, what our adapter puts in ``VideoData.preprocess_kwargs``
(``sglang_media``): the frame indices our sampler chose (or ``fps`` / ``num_frames`` /
``max_frames`` for callers who send those), their timestamps, and the EVS rate. The
options travel to the static-looking ``parse_video`` through a ``ContextVar`` set for the
duration of one request's ``process_mm_data_async``, so concurrent requests on the one
processor instance never see each other's options.

A per-request EVS rate must reach the model too: the model prunes the encoder output at
its configured rate, and the placeholder count must equal what it keeps. The video item
carries the rate in ``model_specific_data``, and :func:`evs_video_at_item_rate` (hooked
around ``EVS.evs_video`` in the scheduler process) prunes at it. Items pruned at a rate
other than the server's get a hash that includes the rate, so RadixAttention never
reuses a prefix computed under another rate.

This module imports SGLang's model code: only SGLang processes load it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from sglang.srt.multimodal.processors.nano_nemotron_vl import (
    MAX_FRAMES,
    NanoNemotronVLImageProcessor,
)

from omni_sglang.media.errors import MediaError
from omni_sglang.media.sampling import FrameRequest, plan_frames
from omni_sglang_nemotron.sglang_media import FRAME_INDICES, PRUNING_RATE, TIMESTAMPS

#: The rate key in a video item's ``model_specific_data``.
ITEM_RATE_KEY = "omni_video_pruning_rate"


@dataclass
class _RequestVideos:
    """One request's per-video options, consumed in order by ``parse_video``."""

    plans: deque[dict[str, Any] | None] = field(default_factory=deque)
    rate: float | None = None  # None: the server's rate


_REQUEST: ContextVar[_RequestVideos | None] = ContextVar("omni_nemotron_videos", default=None)


def _request_videos(video_data: Any) -> _RequestVideos:
    videos = video_data if isinstance(video_data, list) else [video_data] if video_data else []
    options = [getattr(v, "preprocess_kwargs", None) or None for v in videos]
    rates = {float(o[PRUNING_RATE]) for o in options if o and PRUNING_RATE in o}
    if len(rates) > 1:
        raise ValueError(f"videos of one request ask for different pruning rates {sorted(rates)}")
    rate = rates.pop() if rates else None
    if rate is not None and not 0 <= rate < 1:
        raise ValueError(f"video_pruning_rate must be in [0, 1); got {rate}")
    return _RequestVideos(deque(options), rate)


def _frame_plan(video: Any, options: dict[str, Any]) -> tuple[list[int], list[float]]:
    total, fps = len(video), float(video.avg_fps)
    if FRAME_INDICES in options:
        indices = [int(i) for i in options[FRAME_INDICES]]
        if not indices or min(indices) < 0 or max(indices) >= total:
            raise ValueError(f"frame indices outside the video's {total} frames")
    else:
        wanted = FrameRequest.from_options(options.get("fps"), options.get("num_frames"))
        cap = int(options.get("max_frames", MAX_FRAMES))
        duration = total / fps if fps > 0 else 0.0
        try:
            indices = plan_frames(total, fps, duration, wanted, cap).indices
        except MediaError as exc:  # SGLang answers a ValueError with a 400
            raise ValueError(exc.message) from None
    timestamps = options.get(TIMESTAMPS)
    if timestamps is None or len(timestamps) != len(indices):
        timestamps = [i / fps if fps > 0 else 0.0 for i in indices]
    return indices, [float(t) for t in timestamps]


def _rate_salted_hash(feature: Any, rate: float) -> int:
    from sglang.srt.managers.mm_utils import hash_feature

    digest = hashlib.sha256(f"{hash_feature(feature)}|evs={rate!r}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class _RequestRateEVS:
    """The server's ``EVSProcessor`` with one request's rate: the same placeholder
    arithmetic, and video items that tell the model (and the prefix cache) the rate."""

    def __init__(self, server_evs: Any, evs_config: Any, rate: float):
        self._evs = copy.copy(server_evs)
        self._evs.evs_config = dataclasses.replace(evs_config, video_pruning_rate=rate)
        self._rate = rate
        self._salt = rate != evs_config.video_pruning_rate

    def static_size_data_items(self, **kwargs: Any) -> tuple[Callable[..., Any], Any]:
        create, tokens_per_frame = self._evs.static_size_data_items(**kwargs)

        def create_with_rate(**create_kwargs: Any) -> list[Any]:
            items = create(**create_kwargs)
            for item in items:
                if item.is_video():
                    item.model_specific_data[ITEM_RATE_KEY] = self._rate
                    if self._salt:
                        item.hash = _rate_salted_hash(item.feature, self._rate)
            return items

        return create_with_rate, tokens_per_frame


class OmniNanoNemotronVLProcessor(NanoNemotronVLImageProcessor):
    """Registered for the same model classes as SGLang's, in its place."""

    models: ClassVar[list[type]] = list(NanoNemotronVLImageProcessor.models)
    # Token ids even when SGLang's own chat endpoint sends text: its id path expands
    # each image in place, its text path puts them all at the first placeholder.
    prefer_tokenized_input = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from PIL import Image

        # SGLang's __init__ turns PIL's decompression-bomb guard off for the whole
        # process (``Image.MAX_IMAGE_PIXELS = None``), and this process is our server:
        # a 16384x16384 WebP canvas then reached libwebp's decoder instead of our pixel
        # limit. SGLang's processor gets images we decoded and never opens one itself.
        guard = Image.MAX_IMAGE_PIXELS
        super().__init__(*args, **kwargs)
        Image.MAX_IMAGE_PIXELS = guard

    @property
    def evs(self) -> Any:
        request = _REQUEST.get()
        if request is None or request.rate is None:
            return self._server_evs
        server_config = self._server_evs.evs_config
        if server_config is None and request.rate == 0:
            return self._server_evs
        if server_config is None:
            raise ValueError(
                "this server runs without EVS (video_pruning_rate 0); a per-request "
                "video_pruning_rate needs EVS enabled on the server"
            )
        return _RequestRateEVS(self._server_evs, server_config, request.rate)

    @evs.setter
    def evs(self, value: Any) -> None:  # SGLang's __init__ sets the server's
        self._server_evs = value

    async def process_mm_data_async(
        self, image_data: Any, audio_data: Any, input_text: Any, request_obj: Any, **kwargs: Any
    ) -> Any:
        token = _REQUEST.set(_request_videos(getattr(request_obj, "video_data", None)))
        try:
            return await super().process_mm_data_async(
                image_data, audio_data, input_text, request_obj, **kwargs
            )
        finally:
            _REQUEST.reset(token)

    def parse_video(self, video: Any) -> tuple[np.ndarray, list[float]]:
        request = _REQUEST.get()
        options = request.plans.popleft() if request and request.plans else None
        if not options:
            return NanoNemotronVLImageProcessor.parse_video(video)
        indices, timestamps = _frame_plan(video, options)
        return video.get_frames_at(indices), timestamps


def evs_video_at_item_rate(original: Callable[..., Any], model: Any, items: list[Any]) -> Any:
    """Around SGLang's ``EVS.evs_video``: prune at the rate the processor allocated
    placeholders for, when the item names one."""
    rates = {it.model_specific_data.get(ITEM_RATE_KEY) for it in items} - {None}
    if len(rates) != 1:
        # None named; or several single-frame videos of several requests, which SGLang
        # passes together and never prunes (their one frame is always kept).
        return original(model, items)
    (rate,) = rates
    saved = model.evs_config
    model.evs_config = dataclasses.replace(saved, video_pruning_rate=float(rate))
    try:
        return original(model, items)
    finally:
        model.evs_config = saved


def install_processor() -> None:
    """Put our processor in ``PROCESSOR_MAPPING`` for SGLang's Nemotron models. Runs
    after every ``import_processors`` (which would otherwise put SGLang's back)."""
    from sglang.srt.managers.multimodal_processor import PROCESSOR_MAPPING

    names = {model.__name__ for model in OmniNanoNemotronVLProcessor.models}
    for model_cls in [m for m in PROCESSOR_MAPPING if m.__name__ in names]:
        del PROCESSOR_MAPPING[model_cls]
    for model_cls in OmniNanoNemotronVLProcessor.models:
        PROCESSOR_MAPPING[model_cls] = OmniNanoNemotronVLProcessor
