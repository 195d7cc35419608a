"""The Nemotron 3 Nano Omni modality processor: expands media placeholders, tokenizes.

The chat template leaves one ``<image>``, ``<video>`` or ``<so_embedding>`` per media item;
each becomes what the model was trained on (SGLang's ``nano_nemotron_vl`` processor):

- image: ``<img>`` + ``<image>`` * N + ``</img>``, N from dynamic resolution (or tiles);
- video: per tubelet of ``video_temporal_patch_size`` frames
  ``Frame 1 sampled at 0.00 seconds and frame 2 sampled at 0.50 seconds: `` + ``<img>`` +
  ``<image>`` * n + ``</img>``, tubelets joined by newlines; with EVS each tubelet keeps the
  tokens it actually retained (the layout SGLang reaches after EVS redistributes them);
  with ``use_audio_in_video`` the soundtrack's audio expansion follows the frames;
- audio: ``<so_start>`` + ``<so_embedding>`` * M + ``<so_end>``, M from Parakeet's rule.

Each returned item carries ``data``: float32 per-token features [tokens, dim] (see
``mm_features``) and ``options["positions"]``: where its tokens sit in ``input_ids``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from omni_sglang.plugin_api import MediaItem, ModalityProcessor, ProcessedPrompt, UnexpandedPrompt
from omni_sglang_nemotron import evs, mm_features, mm_geometry
from omni_sglang_nemotron.mm_config import (
    DEFAULT_NUM_TILES,
    NUM_VIDEO_TILES,
    OmniMediaConfig,
    media_config,
)


def as_rgb(data: Any) -> Image.Image:
    """An RGB PIL image from a PIL image (any mode) or a uint8 [H, W, 3] array."""
    image = data if isinstance(data, Image.Image) else Image.fromarray(np.asarray(data))
    return image if image.mode == "RGB" else image.convert("RGB")


@dataclass
class _Expanded:
    """One item's rendered text and what the engine needs for it."""

    text: str
    image_tokens: int  # ``<image>`` tokens in ``text``
    audio_tokens: int  # ``<so_embedding>`` tokens in ``text``
    outputs: list[MediaItem] = field(default_factory=list)


class NemotronOmniProcessor(ModalityProcessor):
    modalities = ("image", "video", "audio")

    def __init__(self, cfg: OmniMediaConfig, tokenizer: Any):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self._ids = {t: self._single_token(t) for t in self._needed_tokens()}
        self._placeholder = {
            cfg.img_context_token: "image",
            cfg.video_context_token: "video",
            cfg.audio_context_token: "audio",
        }
        self._split = re.compile("(" + "|".join(map(re.escape, self._placeholder)) + ")")

    @classmethod
    def from_config(cls, model_config: Mapping[str, Any], tokenizer: Any) -> NemotronOmniProcessor:
        return cls(media_config(model_config), tokenizer)

    def _needed_tokens(self) -> list[str]:
        c = self.cfg
        tokens = [c.img_context_token, c.img_start_token, c.img_end_token, c.video_context_token]
        if c.audio is not None:
            tokens += [c.audio_context_token, c.audio_start_token, c.audio_end_token]
        return tokens

    def _single_token(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise ValueError(f"{text!r} is not a single token of this tokenizer")
        return int(ids[0])

    # --- the whole prompt ------------------------------------------------------------------

    def placeholders(self) -> dict[str, str]:
        return dict(self._placeholder)

    def _parts(self, prompt: str, items: Sequence[MediaItem]) -> list[str]:
        """``prompt`` split around its placeholders, checked against ``items``."""
        parts = self._split.split(prompt)
        kinds = [self._placeholder[p] for p in parts[1::2]]
        if len(kinds) != len(items):
            raise ValueError(
                f"the prompt has {len(kinds)} media placeholders for {len(items)} media items"
            )
        for i, (kind, item) in enumerate(zip(kinds, items, strict=True)):
            if kind != item.modality:
                raise ValueError(f"media item {i} is {item.modality} but its placeholder {kind}")
        return parts

    def process(self, prompt: str, items: Sequence[MediaItem]) -> ProcessedPrompt:
        parts = self._parts(prompt, items)
        image_sizes = self._image_plan(prompt, [it for it in items if it.modality == "image"])
        expanded: list[_Expanded] = []
        for item in items:
            if item.modality == "image":
                expanded.append(self._image(item, image_sizes.pop(0)))
            elif item.modality == "video":
                expanded.append(self._video(item))
            else:
                expanded.append(self._audio(item))
        text = "".join(p if i % 2 == 0 else expanded[i // 2].text for i, p in enumerate(parts))
        input_ids = [int(t) for t in self.tokenizer(text, add_special_tokens=False).input_ids]
        return ProcessedPrompt(input_ids, self._place(input_ids, expanded))

    def unexpanded(self, prompt: str, items: Sequence[MediaItem]) -> UnexpandedPrompt:
        from omni_sglang_nemotron.sglang_media import unexpanded_prompt

        self._parts(prompt, items)
        return unexpanded_prompt(self, prompt, items)

    def _place(self, input_ids: list[int], expanded: list[_Expanded]) -> list[MediaItem]:
        """Give each output item the positions of its tokens: both kinds of placeholder
        appear in item order, so each item takes the next ones of its kind."""
        image_id = self._ids[self.cfg.img_context_token]
        audio_id = self._ids.get(self.cfg.audio_context_token, -1)
        image_pos = [i for i, t in enumerate(input_ids) if t == image_id]
        audio_pos = [i for i, t in enumerate(input_ids) if t == audio_id]
        want_image = sum(e.image_tokens for e in expanded)
        want_audio = sum(e.audio_tokens for e in expanded)
        if len(image_pos) != want_image or len(audio_pos) != want_audio:
            # A media token typed in the prompt text would shift every later item.
            raise ValueError("the prompt text contains media tokens of its own")
        out: list[MediaItem] = []
        for e in expanded:
            for item in e.outputs:
                pool = audio_pos if item.modality == "audio" else image_pos
                n = int(item.options["num_tokens"])
                item.options["positions"] = pool[:n]
                del pool[:n]
                out.append(item)
        return out

    # --- images ------------------------------------------------------------------------------

    def _image_plan(self, prompt: str, images: list[MediaItem]) -> list[tuple[int, int, int]]:
        """(w, h, tokens) per image; with dynamic resolution all images of the prompt share
        the budget ``max_model_len`` minus the text's tokens (SGLang's rule)."""
        if not images:
            return []
        sizes = [as_rgb(it.data).size for it in images]
        c = self.cfg
        if not c.dynamic_resolution:
            plan = []
            for w, h in sizes:
                grid = mm_geometry.closest_tile_grid(
                    w, h, min_num=1, max_num=DEFAULT_NUM_TILES, image_size=c.image_size
                )
                tiles = mm_geometry.tile_count(grid, use_thumbnail=c.use_thumbnail)
                plan.append((grid[0], grid[1], tiles * c.tokens_per_tile))
            return plan
        text_only = prompt.replace(c.img_context_token, "")
        text_tokens = len(self.tokenizer(text_only, add_special_tokens=False).input_ids)
        return mm_geometry.budgeted_image_sizes(
            sizes,
            c.max_model_len - text_tokens,
            patch_size=c.patch_size,
            downsample_ratio=c.downsample_ratio,
            min_num_patches=c.min_num_patches,
            max_num_patches=c.max_num_patches,
        )

    def _image(self, item: MediaItem, plan: tuple[int, int, int]) -> _Expanded:
        c = self.cfg
        a, b, tokens = plan
        image = as_rgb(item.data)
        info: dict[str, Any]
        if c.dynamic_resolution:
            data = mm_features.dynamic_image_features(image, (a, b), c)
            info = {"size": (a, b)}
        else:
            data = mm_features.tiled_image_features(image, (a, b), c)
            info = {"grid": (a, b), "num_tiles": tokens // c.tokens_per_tile}
        assert data.shape[0] == tokens, (data.shape, tokens)
        text = c.img_start_token + c.img_context_token * tokens + c.img_end_token
        out = MediaItem("image", data, {**item.options, **info, "num_tokens": tokens})
        return _Expanded(text, tokens, 0, [out])

    # --- video ---------------------------------------------------------------------------------

    def _video_size(self, frames: Any) -> tuple[int, int, int]:
        c = self.cfg
        if c.video_target_num_patches > 0:
            w, h = mm_features.frame_size(frames)
            return mm_geometry.video_frame_size(
                w,
                h,
                target_num_patches=c.video_target_num_patches,
                maintain_aspect_ratio=c.video_maintain_aspect_ratio,
                patch_size=c.patch_size,
                downsample_ratio=c.downsample_ratio,
            )
        # Without a patch target a frame is one square tile (``NUM_VIDEO_TILES``).
        assert NUM_VIDEO_TILES == 1
        return c.image_size, c.image_size, c.tokens_per_tile

    def _video(self, item: MediaItem) -> _Expanded:
        c = self.cfg
        video = item.data
        if getattr(video, "frames", None) is None:
            raise ValueError("the video's frames were not decoded (planned for SGLang only)")
        images = mm_features.frame_images(video.frames)
        if not images:
            raise ValueError("the video has no frames")
        n = len(images)
        timestamps = list(getattr(video, "timestamps", None) or [i * 0.5 for i in range(n)])
        if len(timestamps) != n:
            raise ValueError(f"the video has {n} frames but {len(timestamps)} timestamps")
        temporal = max(1, c.video_temporal_patch_size)
        width, height, per_unit = self._video_size(video.frames)
        data = mm_features.video_features(images, (width, height), c)
        units = -(-n // temporal)  # tubelets (or frames when temporal == 1)
        rate = float(item.options.get("video_pruning_rate", c.video_pruning_rate))
        kept = [per_unit] * units
        if rate > 0 and units > 1:
            mask = evs.retention_mask(data, units, rate)
            kept = mask.reshape(units, per_unit).sum(dim=1).tolist()
            data = data[mask]
        else:
            evs.retained_count(per_unit, units, rate)  # validates the rate
        rendered = []
        for u in range(units):
            frames = range(u * temporal, min(u * temporal + temporal, n))
            label = " and ".join(
                f"{'Frame' if j == 0 else 'frame'} {fi + 1} sampled at {timestamps[fi]:.2f} seconds"
                for j, fi in enumerate(frames)
            )
            rendered.append(
                f"{label}: {c.img_start_token}{c.img_context_token * kept[u]}{c.img_end_token}"
            )
        text = ("\n" if temporal > 1 else "").join(rendered)
        info = {
            "num_tokens": sum(kept),
            "tokens_per_tubelet": kept,
            "num_tubelets": units,
            "frame_size": (width, height),
            "video_pruning_rate": rate,
        }
        out = [MediaItem("video", data, {**item.options, **info})]
        expanded = _Expanded(text, sum(kept), 0, out)
        track = getattr(video, "audio", None)
        # Like SGLang, a soundtrack counts only when asked for and the model hears.
        wanted = bool(item.options.get("use_audio_in_video")) and c.audio is not None
        if wanted and track is not None and len(track) > 0:
            assert c.audio is not None
            rate_hz = int(getattr(video, "audio_sample_rate", c.audio.sampling_rate))
            sound = self._audio_expansion(track, rate_hz, {"source": "video"})
            expanded.text += sound.text
            expanded.audio_tokens = sound.audio_tokens
            expanded.outputs += sound.outputs
        return expanded

    # --- audio ----------------------------------------------------------------------------------

    def _audio(self, item: MediaItem) -> _Expanded:
        sample_rate = getattr(item.data, "sample_rate", None)
        if self.cfg.audio is None:
            raise ValueError("this model has no audio encoder (no sound_config)")
        rate = int(sample_rate or self.cfg.audio.sampling_rate)
        return self._audio_expansion(item.data.samples, rate, dict(item.options))

    def _audio_expansion(self, samples: Any, sample_rate: int, options: dict) -> _Expanded:
        c, audio = self.cfg, self.cfg.audio
        assert audio is not None
        if sample_rate != audio.sampling_rate:
            raise ValueError(f"audio must be {audio.sampling_rate} Hz, got {sample_rate} Hz")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        tokens = mm_geometry.audio_token_count(len(samples), audio)
        data = mm_features.audio_features(samples, tokens, audio)
        text = c.audio_start_token + c.audio_context_token * tokens + c.audio_end_token
        info = {"num_tokens": tokens, "duration": len(samples) / audio.sampling_rate}
        return _Expanded(text, 0, tokens, [MediaItem("audio", data, {**options, **info})])
