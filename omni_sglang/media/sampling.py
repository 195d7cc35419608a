"""Which frames of a video to use: NIM's ``media_io_kwargs.video`` rules.

- ``fps`` > 0 and ``num_frames`` <= 0 (or unset): sample at that rate;
- ``num_frames`` > 0 and ``fps`` <= 0 (or unset): that many frames, spread evenly;
- both positive: whichever gives MORE frames;
- neither: 2 fps, the rate the model was trained on.

Rate-driven sampling that would exceed the frame cap spreads the cap evenly over the
whole video instead (as SGLang does with its 128), so a long video is still seen from
start to end. An explicit ``num_frames`` above the cap is refused: silently giving
fewer frames than asked for would change the answer without telling the client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from omni_sglang.media.errors import MediaError, MediaLimitError

DEFAULT_FPS = 2.0


@dataclass(frozen=True)
class FrameRequest:
    """What the client asked for, normalised: None means 'not given'."""

    fps: float | None = None
    num_frames: int | None = None

    @classmethod
    def from_options(cls, fps: float | None, num_frames: int | None) -> FrameRequest:
        return cls(
            fps=float(fps) if fps is not None and fps > 0 else None,
            num_frames=int(num_frames) if num_frames is not None and num_frames > 0 else None,
        )

    def key(self) -> str:
        """Stable text for cache keys: equal for requests that select the same frames."""
        fps = DEFAULT_FPS if self.fps is None and self.num_frames is None else self.fps
        return f"fps={fps!r},n={self.num_frames!r}"


@dataclass
class FramePlan:
    indices: list[int]
    warnings: list[str] = field(default_factory=list)


def check_request(req: FrameRequest, max_frames: int) -> None:
    """Refuse an impossible request before touching the video."""
    if req.num_frames is not None and req.num_frames > max_frames:
        raise MediaLimitError(
            f"num_frames={req.num_frames} is above the limit of {max_frames} frames per video"
        )


def plan_frames(
    total_frames: int, source_fps: float, duration: float, req: FrameRequest, max_frames: int
) -> FramePlan:
    if total_frames <= 0:
        raise MediaError("video has no frames")
    check_request(req, max_frames)
    if source_fps <= 0:
        source_fps = total_frames / duration if duration > 0 else 1.0
    if duration <= 0:
        duration = total_frames / source_fps
    fps = req.fps
    if fps is None and req.num_frames is None:
        fps = DEFAULT_FPS

    notes: list[str] = []
    rate_count = _count_at_rate(total_frames, source_fps, duration, fps) if fps else 0
    even_count = req.num_frames or 0
    if rate_count > even_count:
        assert fps is not None
        if rate_count > max_frames:
            notes.append(
                f"sampling the {duration:.1f} s video at {fps:g} fps would take "
                f"{rate_count} frames; {max_frames} frames (the limit) were spread over it"
            )
            return FramePlan(_spread(total_frames, max_frames), notes)
        if fps >= source_fps:
            return FramePlan(list(range(total_frames)), notes)
        step = source_fps / fps
        indices = sorted({min(total_frames - 1, round(k * step)) for k in range(rate_count)})
        return FramePlan(indices, notes)
    if even_count > total_frames:
        notes.append(
            f"num_frames={even_count} but the video has only {total_frames} frames; "
            "all of them are used"
        )
        return FramePlan(list(range(total_frames)), notes)
    return FramePlan(_spread(total_frames, even_count), notes)


def _count_at_rate(total_frames: int, source_fps: float, duration: float, fps: float) -> int:
    if fps >= source_fps:
        return total_frames
    # A tiny epsilon so 4.0 s * 2 fps is 8 frames even when the float is 7.9999999.
    return max(1, min(total_frames, math.floor(duration * fps + 1e-6)))


def _spread(total_frames: int, count: int) -> list[int]:
    """``count`` frame indices evenly over the whole video, first and last included."""
    if count >= total_frames:
        return list(range(total_frames))
    return [int(i) for i in np.linspace(0, total_frames - 1, count).round().astype(int)]
