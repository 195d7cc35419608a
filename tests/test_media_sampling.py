"""Frame selection rules (NIM media_io_kwargs.video), on frame counts alone: no decoding."""

from __future__ import annotations

import pytest

from omni_sglang.media.errors import MediaError, MediaLimitError
from omni_sglang.media.sampling import FrameRequest, plan_frames


def plan(fps=None, num_frames=None, total=300, src_fps=30.0, cap=128):
    req = FrameRequest.from_options(fps, num_frames)
    return plan_frames(total, src_fps, total / src_fps, req, cap)


def test_default_is_two_fps():
    p = plan()  # 10 s at 30 fps
    assert p.indices == list(range(0, 300, 15))
    assert p.warnings == []


def test_minus_one_means_unset():
    assert plan(fps=-1, num_frames=-1).indices == plan().indices
    assert plan(fps=0, num_frames=0).indices == plan().indices


def test_fps_only():
    assert plan(fps=1).indices == list(range(0, 300, 30))
    assert plan(fps=3, num_frames=-1).indices == list(range(0, 300, 10))


def test_num_frames_only_spreads_evenly_including_last_frame():
    p = plan(num_frames=5, fps=-1)
    assert p.indices == [0, 75, 150, 224, 299]


def test_both_positive_takes_the_larger_count():
    assert len(plan(fps=1, num_frames=16).indices) == 16  # 10 frames at 1 fps < 16
    assert plan(fps=3, num_frames=16).indices == list(range(0, 300, 10))  # 30 > 16


def test_rate_above_source_fps_takes_every_frame():
    assert plan(fps=60, total=90).indices == list(range(90))


def test_rate_over_cap_spreads_cap_over_whole_video():
    p = plan(fps=2, total=30 * 600, cap=128)  # 10 minutes at 2 fps = 1200 frames
    assert len(p.indices) == 128
    assert p.indices[0] == 0 and p.indices[-1] == 30 * 600 - 1
    assert "128 frames" in p.warnings[0] and "1200" in p.warnings[0]


def test_num_frames_above_cap_is_refused_naming_the_cap():
    with pytest.raises(MediaLimitError, match="num_frames=200 is above the limit of 128"):
        plan(num_frames=200)


def test_num_frames_above_frame_count_uses_all_frames_with_warning():
    p = plan(num_frames=50, total=20)
    assert p.indices == list(range(20))
    assert "only 20 frames" in p.warnings[0]


def test_short_video_gets_at_least_one_frame():
    assert plan(total=5).indices == [0]  # 1/6 s: below one 2 fps step


def test_empty_video_is_an_error():
    with pytest.raises(MediaError, match="no frames"):
        plan(total=0)


def test_unknown_source_fps_uses_duration():
    req = FrameRequest.from_options(None, None)
    p = plan_frames(100, 0.0, 10.0, req, 128)
    assert p.indices == list(range(0, 100, 5))
