"""The media settings of a Nemotron Omni checkpoint, read from its ``config.json`` mapping.

Key names and defaults are SGLang 0.5.23's (``srt/configs/nano_nemotron_vl.py``,
``srt/configs/parakeet.py``), read the way it reads them, so one code path serves the real
``NemotronH_Nano_Omni_Reasoning_V3`` checkpoint and the tiny test model (which carries
the same keys with tiny values):

- top level: ``force_image_size`` (tile size), ``patch_size``, ``downsample_ratio``,
  ``use_thumbnail``, ``norm_mean``/``norm_std``, ``video_pruning_rate`` (EVS default),
  the token strings (``img_context_token`` ...);
- ``vision_config``: ``image_size``/``patch_size`` (override the top level, may be lists),
  ``min_num_patches``/``max_num_patches`` (> 0 switches images from InternVL tiles to
  dynamic resolution), ``video_temporal_patch_size`` (tubelet depth),
  ``video_target_num_patches`` and ``video_maintain_aspect_ratio`` (video frame size);
- ``sound_config`` (Parakeet): ``sampling_rate``, ``subsampling_factor``,
  ``subsampling_conv_kernel_size``, ``subsampling_conv_stride``, ``hop_length``,
  ``num_mel_bins``.

``max_model_len`` is not a checkpoint key: SGLang takes the served context length (or 8192)
as the token budget of dynamic-resolution images, so the server passes it in the mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: SGLang's processor constants (not config keys): tiles per image, tiles per video frame.
DEFAULT_NUM_TILES = 12
NUM_VIDEO_TILES = 1
#: SGLang's fallback when the server sets no context length.
DEFAULT_MAX_MODEL_LEN = 8192
#: Parakeet ``ExtractorConfig`` defaults (not read from the checkpoint by SGLang either).
DEFAULT_HOP_LENGTH = 160
CLIP_DURATION_S = 30
CLIP_MIN_DURATION_S = 0.1


@dataclass(frozen=True)
class AudioConfig:
    sampling_rate: int
    subsampling_factor: int
    subsampling_conv_kernel_size: int
    subsampling_conv_stride: int
    hop_length: int = DEFAULT_HOP_LENGTH
    num_mel_bins: int = 128

    @property
    def samples_per_token(self) -> int:
        """Audio samples one encoder output token covers (80 ms for the real model)."""
        return self.hop_length * self.subsampling_factor


@dataclass(frozen=True)
class OmniMediaConfig:
    image_size: int
    patch_size: int
    downsample_ratio: float
    use_thumbnail: bool
    norm_mean: tuple[float, float, float]
    norm_std: tuple[float, float, float]
    min_num_patches: int
    max_num_patches: int
    video_temporal_patch_size: int
    video_target_num_patches: int
    video_maintain_aspect_ratio: bool
    video_pruning_rate: float
    max_model_len: int
    img_context_token: str = "<image>"
    img_start_token: str = "<img>"
    img_end_token: str = "</img>"
    video_context_token: str = "<video>"
    audio_context_token: str = "<so_embedding>"
    audio_start_token: str = "<so_start>"
    audio_end_token: str = "<so_end>"
    audio: AudioConfig | None = None

    @property
    def dynamic_resolution(self) -> bool:
        return self.min_num_patches > 0

    @property
    def shuffle(self) -> int:
        """Side of the pixel-shuffle block: 2 for ``downsample_ratio`` 0.5."""
        return round(1 / self.downsample_ratio)

    @property
    def tokens_per_tile(self) -> int:
        # SGLang's ``num_image_token``, same float arithmetic.
        return int((self.image_size // self.patch_size) ** 2 * (self.downsample_ratio**2))

    @property
    def image_feature_dim(self) -> int:
        """Length of one image token's feature: the pixels of its shuffled patches."""
        return self.shuffle**2 * 3 * self.patch_size**2

    @property
    def video_feature_dim(self) -> int:
        return self.image_feature_dim * max(1, self.video_temporal_patch_size)

    @property
    def audio_feature_dim(self) -> int:
        return self.audio.num_mel_bins if self.audio is not None else 0


def _first(value: Any) -> int:
    return int(value[0] if isinstance(value, list | tuple) else value)


def _triplet(value: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in value)
    return a, b, c


def media_config(model_config: Mapping[str, Any]) -> OmniMediaConfig:
    """Read the media settings of a checkpoint's ``config.json`` (SGLang's defaults)."""
    vision = model_config.get("vision_config") or {}
    sound = model_config.get("sound_config")
    audio = None
    if sound:
        audio = AudioConfig(
            sampling_rate=int(sound["sampling_rate"]),
            subsampling_factor=int(sound["subsampling_factor"]),
            subsampling_conv_kernel_size=int(sound["subsampling_conv_kernel_size"]),
            subsampling_conv_stride=int(sound["subsampling_conv_stride"]),
            hop_length=int(sound.get("hop_length", DEFAULT_HOP_LENGTH)),
            num_mel_bins=int(sound.get("num_mel_bins", 128)),
        )
    force_image_size = model_config.get("force_image_size", 512)
    return OmniMediaConfig(
        image_size=_first(vision.get("image_size", force_image_size)),
        patch_size=_first(vision.get("patch_size", model_config.get("patch_size", 16))),
        downsample_ratio=float(model_config.get("downsample_ratio", 0.5)),
        use_thumbnail=bool(model_config.get("use_thumbnail", True)),
        norm_mean=_triplet(model_config.get("norm_mean", IMAGENET_MEAN)),
        norm_std=_triplet(model_config.get("norm_std", IMAGENET_STD)),
        min_num_patches=int(vision.get("min_num_patches", 0)),
        max_num_patches=int(vision.get("max_num_patches", 0)),
        video_temporal_patch_size=int(vision.get("video_temporal_patch_size", 1)),
        video_target_num_patches=int(vision.get("video_target_num_patches", 0)),
        video_maintain_aspect_ratio=bool(vision.get("video_maintain_aspect_ratio", True)),
        video_pruning_rate=float(model_config.get("video_pruning_rate", 0.0)),
        max_model_len=int(model_config.get("max_model_len") or DEFAULT_MAX_MODEL_LEN),
        img_context_token=model_config.get("img_context_token", "<image>"),
        img_start_token=model_config.get("img_start_token", "<img>"),
        img_end_token=model_config.get("img_end_token", "</img>"),
        video_context_token=model_config.get("video_context_token", "<video>"),
        audio_context_token=model_config.get("audio_context_token", "<so_embedding>"),
        audio_start_token=model_config.get("audio_start_token", "<so_start>"),
        audio_end_token=model_config.get("audio_end_token", "<so_end>"),
        audio=audio,
    )
