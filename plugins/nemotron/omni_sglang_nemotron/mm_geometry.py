"""Token counts and resize targets of Nemotron Omni media, rule for rule as SGLang 0.5.23.

The number of placeholder tokens the host writes must equal what the model's encoders
produce, so these functions mirror SGLang's (``srt/multimodal/internvl_utils.py``, itself
from InternVL, and ``srt/models/parakeet.py``), including their rounding and tie-breaking;
tests compare them with SGLang's own functions. Pure Python: no torch, no SGLang.
"""

from __future__ import annotations

import math

from omni_sglang_nemotron.mm_config import CLIP_DURATION_S, CLIP_MIN_DURATION_S, AudioConfig

# --- images: InternVL tiles (configs without dynamic resolution) ---------------------------


def closest_tile_grid(
    width: int, height: int, *, min_num: int, max_num: int, image_size: int
) -> tuple[int, int]:
    """(columns, rows) of the tile grid InternVL's ``dynamic_preprocess`` picks."""
    aspect_ratio = width / height
    # Built and sorted exactly as upstream: ties between equal products keep set order.
    target_ratios = sorted(
        {
            (i, j)
            for n in range(min_num, max_num + 1)
            for i in range(1, n + 1)
            for j in range(1, n + 1)
            if min_num <= i * j <= max_num
        },
        key=lambda x: x[0] * x[1],
    )
    best_diff, best = float("inf"), (1, 1)
    area = width * height
    for ratio in target_ratios:
        diff = abs(aspect_ratio - ratio[0] / ratio[1])
        if diff < best_diff:
            best_diff, best = diff, ratio
        elif diff == best_diff and area > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
            best = ratio
    return best


def tile_count(grid: tuple[int, int], *, use_thumbnail: bool) -> int:
    """Tiles of a grid, plus the whole-image thumbnail InternVL adds to multi-tile grids."""
    blocks = grid[0] * grid[1]
    return blocks + (1 if use_thumbnail and blocks != 1 else 0)


# --- images: dynamic resolution (the Omni checkpoint) ---------------------------------------


def dynamic_image_size(
    width: int,
    height: int,
    *,
    patch_size: int,
    downsample_ratio: float,
    min_num_patches: int,
    max_num_patches: int,
) -> tuple[int, int, int]:
    """(target_w, target_h, tokens): aspect kept, patch budget respected, sides snapped to
    ``patch_size * shuffle`` so the pixel shuffle tiles the patch grid exactly."""
    ds = int(1 / downsample_ratio)
    pw = max(1, round(width / patch_size))
    ph = max(1, round(height / patch_size))
    native = pw * ph
    budget = max(min(native, max_num_patches), min_num_patches)
    factor = min(math.sqrt(budget / max(native, 1)), 1.0)
    tpw = max(ds, round(pw * factor / ds) * ds)
    tph = max(ds, round(ph * factor / ds) * ds)
    if tpw * tph < min_num_patches:
        up = math.sqrt(min_num_patches / (tpw * tph))
        tpw = max(ds, math.ceil(tpw * up / ds) * ds)
        tph = max(ds, math.ceil(tph * up / ds) * ds)
    if tpw * tph > max_num_patches:
        down = math.sqrt(max_num_patches / (tpw * tph))
        tpw = max(ds, math.floor(tpw * down / ds) * ds)
        tph = max(ds, math.floor(tph * down / ds) * ds)
    return tpw * patch_size, tph * patch_size, (tpw * tph) // (ds * ds)


def budgeted_image_sizes(
    sizes: list[tuple[int, int]],
    total_token_budget: int,
    *,
    patch_size: int,
    downsample_ratio: float,
    min_num_patches: int,
    max_num_patches: int,
    max_iterations: int = 10,
) -> list[tuple[int, int, int]]:
    """Per-image (w, h, tokens) whose sum fits the prompt's budget (``max_model_len``
    minus text tokens): the patch caps shrink proportionally, at most ten rounds."""
    if not sizes:
        return []
    ds = round(1 / downsample_ratio)
    caps = [max_num_patches] * len(sizes)
    results: list[tuple[int, int, int]] = []
    for _ in range(max_iterations):
        results = [
            dynamic_image_size(
                w,
                h,
                patch_size=patch_size,
                downsample_ratio=downsample_ratio,
                min_num_patches=min_num_patches,
                max_num_patches=caps[i],
            )
            for i, (w, h) in enumerate(sizes)
        ]
        total = sum(r[2] for r in results)
        if total <= total_token_budget:
            return results
        scale = total_token_budget / total
        caps = [max(min_num_patches, int(r[2] * ds * ds * scale)) for r in results]
    return results


# --- video ------------------------------------------------------------------------------------


def video_frame_size(
    width: int,
    height: int,
    *,
    target_num_patches: int,
    maintain_aspect_ratio: bool,
    patch_size: int,
    downsample_ratio: float,
) -> tuple[int, int, int]:
    """(target_w, target_h, tokens per frame or tubelet) of a video frame."""
    ds = int(1 / downsample_ratio)
    if target_num_patches > 0 and maintain_aspect_ratio:
        aspect = width / max(height, 1)
        ph = math.sqrt(target_num_patches / max(aspect, 1e-6))
        pw = ph * aspect
        tpw = max(ds, round(pw / ds) * ds)
        tph = max(ds, round(ph / ds) * ds)
    elif target_num_patches > 0:
        side = int(math.sqrt(target_num_patches))
        tpw = tph = max(ds, round(side / ds) * ds)
    else:
        tpw = max(ds, round(width / patch_size / ds) * ds)
        tph = max(ds, round(height / patch_size / ds) * ds)
    return tpw * patch_size, tph * patch_size, (tpw // ds) * (tph // ds)


# --- audio ------------------------------------------------------------------------------------


def audio_clip_sizes(num_samples: int, audio: AudioConfig) -> list[int]:
    """Parakeet splits audio into 30 s clips; a short tail is padded to 0.1 s."""
    clip = round(CLIP_DURATION_S * audio.sampling_rate)
    tail_min = round(CLIP_MIN_DURATION_S * audio.sampling_rate)
    num_samples = max(num_samples, tail_min)
    full, rest = divmod(num_samples, clip)
    return [clip] * full + ([max(rest, tail_min)] if rest > 0 else [])


def _subsampled_length(length: int, audio: AudioConfig) -> int:
    kernel, stride = audio.subsampling_conv_kernel_size, audio.subsampling_conv_stride
    add_pad = (kernel - 1) // 2 * 2 - kernel
    for _ in range(int(math.log2(audio.subsampling_factor))):
        length = math.floor((length + add_pad) / stride + 1.0)
    return max(1, length)


def audio_token_count(num_samples: int, audio: AudioConfig) -> int:
    """Encoder output tokens for ``num_samples`` at the model's rate (12.5/s for Omni):
    per clip, mel frames (``hop_length``) through the stride-2 convolutions."""
    total = sum(
        _subsampled_length(size // audio.hop_length, audio)
        for size in audio_clip_sizes(num_samples, audio)
    )
    return max(1, total)
