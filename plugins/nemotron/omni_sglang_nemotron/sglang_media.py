"""A request's media for SGLang, which expands the placeholders itself.

SGLang's Nemotron processor (our subclass of it, ``sglang_processor``) gets:

- the prompt as token ids with one placeholder per item (its id path expands each item
  in place; its text path puts every image at the first ``<image>``);
- images as the RGB Pillow images we decoded (limits and animated-GIF choice applied);
- videos as SGLang's ``VideoData`` over the bytes we fetched, with the frames our sampler
  chose (fps / num_frames / the frame cap) and their timestamps, plus the request's EVS
  rate, in ``preprocess_kwargs``: the one place SGLang keeps per-video options through
  batch splitting;
- audio as the bytes we fetched; a video's soundtrack (``use_audio_in_video``) as the
  video's bytes under an audio placeholder placed right after the video, as our CPU
  path places it (SGLang's own flag would append it at the end of the prompt, and is
  lost when SGLang splits a batch). SGLang's audio loader reads the MP4's sound track.

Nothing here fetches: SGLang never sees a URL. Imports SGLang (only the SGLang engine
calls this).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from omni_sglang.plugin_api import MediaItem, UnexpandedPrompt

if TYPE_CHECKING:
    from omni_sglang_nemotron.modality import NemotronOmniProcessor

#: ``VideoData.preprocess_kwargs`` keys our SGLang processor reads.
FRAME_INDICES = "frame_indices"
TIMESTAMPS = "timestamps"
PRUNING_RATE = "video_pruning_rate"


def _source(item: MediaItem, index: int) -> bytes:
    if not item.source:
        raise ValueError(
            f"{item.modality} item {index} has no encoded bytes; SGLang decodes media itself"
        )
    return item.source


def video_data(item: MediaItem, index: int) -> Any:
    from sglang.srt.utils.common import VideoData

    video = item.data
    kwargs: dict[str, Any] = {
        FRAME_INDICES: [int(i) for i in video.frame_indices],
        TIMESTAMPS: [float(t) for t in video.timestamps],
    }
    if PRUNING_RATE in item.options:
        kwargs[PRUNING_RATE] = float(item.options[PRUNING_RATE])
    # VideoData.url is typed str, but SGLang's loader takes bytes there as they are.
    return VideoData(url=_source(item, index), preprocess_kwargs=kwargs)


def _wants_soundtrack(item: MediaItem, processor: NemotronOmniProcessor) -> bool:
    video = item.data
    if not item.options.get("use_audio_in_video") or processor.cfg.audio is None:
        return False
    track = getattr(video, "audio", None)
    if track is not None:
        return len(track) > 0
    # Frames (and sound) left for SGLang to decode: the container says there is a track.
    return getattr(video, "frames", None) is None and bool(getattr(video, "has_audio_track", False))


def unexpanded_prompt(
    processor: NemotronOmniProcessor, prompt: str, items: Sequence[MediaItem]
) -> UnexpandedPrompt:
    """``items`` are in placeholder order (the caller checked ``prompt`` against them)."""
    from omni_sglang_nemotron.modality import as_rgb

    cfg = processor.cfg
    ids = processor._ids
    image_id, video_id = ids[cfg.img_context_token], ids[cfg.video_context_token]
    audio_id = ids.get(cfg.audio_context_token, -1)
    tokens = [int(t) for t in processor.tokenizer(prompt, add_special_tokens=False).input_ids]
    wanted = {"image": image_id, "video": video_id, "audio": audio_id}
    for kind, token in wanted.items():
        count = sum(1 for item in items if item.modality == kind)
        if tokens.count(token) != count:
            raise ValueError("the prompt text contains media tokens of its own")

    out = UnexpandedPrompt(input_ids=[])
    queue = {k: [(i, it) for i, it in enumerate(items) if it.modality == k] for k in wanted}
    for token in tokens:
        out.input_ids.append(token)
        if token == image_id:
            _, item = queue["image"].pop(0)
            out.image_data.append(as_rgb(item.data))
        elif token == video_id:
            index, item = queue["video"].pop(0)
            out.video_data.append(video_data(item, index))
            if _wants_soundtrack(item, processor):
                out.input_ids.append(audio_id)
                out.audio_data.append(_source(item, index))
        elif token == audio_id:
            index, item = queue["audio"].pop(0)
            out.audio_data.append(_source(item, index))
    return out
