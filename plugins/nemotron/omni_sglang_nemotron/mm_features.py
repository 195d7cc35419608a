"""Per-token input features of Nemotron Omni media, computed on the host.

One row per placeholder token, in the order the model consumes them, so an engine can
encode them and write the result at the item's positions. Geometry is the real model's
(resize targets, tiles, 2x2 pixel shuffle, tubelets, 80 ms audio tokens); the feature of
an image token is the normalized pixels of the patches shuffled into it, of a tubelet
token the same for its frames side by side (the last tubelet repeats its final frame, as
RADIO's video embedder pads), of an audio token the log band energies of its window.
Deterministic: the same media always give the same features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from omni_sglang_nemotron.mm_config import AudioConfig, OmniMediaConfig

if TYPE_CHECKING:
    import torch


def _pixels(image: Image.Image, size: tuple[int, int], cfg: OmniMediaConfig) -> np.ndarray:
    """Resize (bicubic, as SGLang) and normalize to float32 [H, W, 3]."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if rgb.size != size:
        rgb = rgb.resize(size, Image.Resampling.BICUBIC)
    arr = np.asarray(rgb, dtype=np.float32) / 255.0
    mean = np.asarray(cfg.norm_mean, dtype=np.float32)
    std = np.asarray(cfg.norm_std, dtype=np.float32)
    return (arr - mean) / std


def shuffled_patches(frames: np.ndarray, patch: int, shuffle: int) -> np.ndarray:
    """[T, H, W, 3] -> [tokens, T * shuffle^2 * patch^2 * 3]: each token gathers the
    ``shuffle x shuffle`` neighbouring patches of every frame (row-major token order)."""
    t, h, w, c = frames.shape
    gh, gw = h // (patch * shuffle), w // (patch * shuffle)
    grid = frames.reshape(t, gh, shuffle, patch, gw, shuffle, patch, c)
    # -> [gh, gw, T, shuffle_row, shuffle_col, patch_row, patch_col, c]
    grid = grid.transpose(1, 4, 0, 2, 5, 3, 6, 7)
    return np.ascontiguousarray(grid.reshape(gh * gw, -1))


def _tensor(rows: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))


def dynamic_image_features(
    image: Image.Image, size: tuple[int, int], cfg: OmniMediaConfig
) -> torch.Tensor:
    pix = _pixels(image, size, cfg)[None]
    return _tensor(shuffled_patches(pix, cfg.patch_size, cfg.shuffle))


def tiled_image_features(
    image: Image.Image, grid: tuple[int, int], cfg: OmniMediaConfig
) -> torch.Tensor:
    """InternVL tiles, row-major, then the thumbnail when there is more than one tile."""
    side = cfg.image_size
    cols, rows = grid
    whole = _pixels(image, (cols * side, rows * side), cfg)
    tiles = [
        whole[r * side : (r + 1) * side, c * side : (c + 1) * side]
        for r in range(rows)
        for c in range(cols)
    ]
    if cfg.use_thumbnail and len(tiles) != 1:
        tiles.append(_pixels(image, (side, side), cfg))
    feats = [shuffled_patches(tile[None], cfg.patch_size, cfg.shuffle) for tile in tiles]
    return _tensor(np.concatenate(feats))


def frame_images(frames: Any) -> list[Image.Image]:
    """Video frames as PIL images: from a uint8 [T, H, W, 3] array or a list of images."""
    if isinstance(frames, np.ndarray):
        return [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    return [f if isinstance(f, Image.Image) else Image.fromarray(np.asarray(f)) for f in frames]


def frame_size(frames: Any) -> tuple[int, int]:
    """(width, height) of the first frame."""
    if isinstance(frames, np.ndarray):
        return int(frames.shape[2]), int(frames.shape[1])
    first = frames[0]
    return first.size if isinstance(first, Image.Image) else (first.shape[1], first.shape[0])


def video_features(
    images: Sequence[Image.Image], size: tuple[int, int], cfg: OmniMediaConfig
) -> torch.Tensor:
    """Tubelet-major token features [num_tubelets * tokens_per_tubelet, video_dim]."""
    temporal = max(1, cfg.video_temporal_patch_size)
    frames = np.stack([_pixels(img, size, cfg) for img in images])
    if len(frames) % temporal:
        pad = temporal - len(frames) % temporal
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
    tubelets = [
        shuffled_patches(frames[i : i + temporal], cfg.patch_size, cfg.shuffle)
        for i in range(0, len(frames), temporal)
    ]
    return _tensor(np.concatenate(tubelets))


def audio_features(samples: np.ndarray, num_tokens: int, audio: AudioConfig) -> torch.Tensor:
    """[num_tokens, num_mel_bins]: log mean power of equal-width frequency bands of each
    token's window (Hann); the tail past the signal is silence."""
    span = audio.samples_per_token
    signal = np.zeros(num_tokens * span, dtype=np.float32)
    mono = np.asarray(samples, dtype=np.float32).reshape(-1)[: len(signal)]
    signal[: len(mono)] = mono
    windows = signal.reshape(num_tokens, span) * np.hanning(span).astype(np.float32)
    power = np.abs(np.fft.rfft(windows, axis=1)) ** 2
    bands = np.array_split(power[:, 1:], audio.num_mel_bins, axis=1)  # DC carries no pitch
    energy = np.stack([b.mean(axis=1) for b in bands], axis=1)
    return _tensor(np.log1p(energy))
