"""Efficient Video Sampling (EVS, arXiv 2510.14624): drop video tokens that repeat the
previous frame (here: tubelet).

The host decides how many tokens a video keeps, so the prompt is built with that many
placeholders; the count must be SGLang's (``srt/multimodal/evs/evs_core.py``, from vLLM)
exactly. Which tokens: per spatial position, score = 1 - cosine similarity with the same
position one frame earlier; the first frame scores 255 so it is always kept; the
``retained_count`` best scores win (stable sort, so ties keep the earlier token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def retained_count(tokens_per_frame: int, num_frames: int, rate: float) -> int:
    """Tokens a video keeps at pruning ``rate``: never fewer than one whole frame."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"video_pruning_rate must be in [0, 1), got {rate}")
    return max(tokens_per_frame, int(tokens_per_frame * num_frames * (1 - rate)))


def placeholder_split(tokens_per_frame: int, num_frames: int, rate: float) -> list[int]:
    """SGLang's provisional per-frame placeholder counts (remainder on the last frame);
    the model later moves them to the frames the tokens were actually kept in."""
    kept = retained_count(tokens_per_frame, num_frames, rate)
    base, rest = divmod(kept, num_frames)
    return [base] * (num_frames - 1) + [base + rest]


def retention_mask(features: torch.Tensor, num_frames: int, rate: float) -> torch.Tensor:
    """Boolean mask over ``features`` [frames * tokens_per_frame, dim] (frame-major) of
    the tokens EVS keeps."""
    import torch

    tokens_per_frame = features.shape[0] // num_frames
    grid = features.reshape(num_frames, tokens_per_frame, -1).float()
    similarity = torch.nn.functional.cosine_similarity(grid[1:], grid[:-1], dim=-1)
    dissimilarity = torch.cat([torch.full_like(grid[:1, :, 0], 255.0), 1 - similarity], dim=0)
    flat = dissimilarity.reshape(-1)
    order = torch.argsort(flat, descending=True, stable=True)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[order[: retained_count(tokens_per_frame, num_frames, rate)]] = True
    return mask
