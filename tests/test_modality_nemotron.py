"""The nemotron_omni modality processor: placeholder expansion, token counts, positions,
EVS and features, on the tiny model's config (the real checkpoint's keys, tiny values).

Expected counts are worked out by hand from SGLang's rules (the arithmetic is in the
comments); test_modality_sglang.py checks the same rules against SGLang itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoTokenizer

from omni_sglang.plugin_api import MediaItem, ModalityProcessor
from omni_sglang.plugins import registry
from omni_sglang_nemotron.mm_config import media_config
from omni_sglang_nemotron.modality import NemotronOmniProcessor

USER = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n<think>\n"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> Any:
    return AutoTokenizer.from_pretrained(str(tiny_model_path))


@pytest.fixture(scope="module")
def config(tiny_model_path: Path) -> dict[str, Any]:
    return dict(json.loads((tiny_model_path / "config.json").read_text()))


@pytest.fixture(scope="module")
def proc(config: dict[str, Any], tokenizer: Any) -> ModalityProcessor:
    return registry.get("modality_processors", "nemotron_omni").create(config, tokenizer)  # type: ignore[attr-defined]


def noise_image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def video(
    n: int, w: int = 64, h: int = 64, fps: float = 2.0, audio_s: float | None = None, seed: int = 0
) -> Any:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    audio = (
        None if audio_s is None else rng.standard_normal(int(audio_s * 16000)).astype(np.float32)
    )
    return SimpleNamespace(frames=frames, timestamps=[i / fps for i in range(n)], audio=audio)


def sound(seconds: float, seed: int = 0) -> Any:
    samples = np.random.default_rng(seed).standard_normal(round(seconds * 16000))
    return SimpleNamespace(samples=samples.astype(np.float32), duration=seconds, sample_rate=16000)


def count(ids: list[int], tokenizer: Any, token: str) -> int:
    return ids.count(tokenizer.convert_tokens_to_ids(token))


def test_config_keys_of_the_tiny_and_the_real_checkpoint(config: dict[str, Any]) -> None:
    tiny = media_config(config)
    assert (tiny.image_size, tiny.patch_size, tiny.shuffle) == (32, 8, 2)
    assert tiny.dynamic_resolution and (tiny.min_num_patches, tiny.max_num_patches) == (16, 256)
    assert (tiny.video_temporal_patch_size, tiny.video_target_num_patches) == (2, 64)
    assert tiny.audio is not None and tiny.audio.samples_per_token == 1280  # 80 ms
    # The real checkpoint's values (config.json of Nemotron-3-Nano-Omni-30B-A3B-Reasoning).
    real = media_config(
        {
            "force_image_size": 512,
            "patch_size": 16,
            "downsample_ratio": 0.5,
            "video_pruning_rate": 0.7,
            "vision_config": {
                "patch_size": 16,
                "min_num_patches": 1024,
                "max_num_patches": 13312,
                "video_temporal_patch_size": 2,
                "video_target_num_patches": 1024,
            },
            "sound_config": {
                "sampling_rate": 16000,
                "subsampling_factor": 8,
                "subsampling_conv_kernel_size": 3,
                "subsampling_conv_stride": 2,
                "num_mel_bins": 128,
            },
        }
    )
    assert real.tokens_per_tile == 256 and real.video_pruning_rate == 0.7
    assert real.image_feature_dim == 3072 and real.video_feature_dim == 6144
    assert real.max_model_len == 8192  # SGLang's fallback without a served context length


@pytest.mark.parametrize(
    ("w", "h", "tokens"),
    [
        (64, 48, 12),  # 8x6 patches, under the cap: 4x3 tokens
        (32, 32, 4),  # 4x4 patches
        (8, 8, 4),  # 1 patch, raised to the 16-patch minimum: 4x4
        (640, 480, 63),  # 80x60 patches scaled by sqrt(256/4800): 18x14 -> 9x7
        (1000, 100, 52),  # 62x6 scaled by sqrt(256/372): 52x4 -> 26x2
        (100, 1000, 52),  # the same, portrait
    ],
)
def test_image_expansion_dynamic_resolution(
    proc: ModalityProcessor, tokenizer: Any, w: int, h: int, tokens: int
) -> None:
    out = proc.process(
        USER.format("What is this? <image>"), [MediaItem("image", noise_image(w, h))]
    )
    text = tokenizer.decode(out.input_ids)
    assert "What is this? <img>" + "<image>" * tokens + "</img><|im_end|>" in text
    assert count(out.input_ids, tokenizer, "<image>") == tokens
    (item,) = out.items
    assert item.modality == "image" and item.options["num_tokens"] == tokens
    assert item.data.dtype == torch.float32 and tuple(item.data.shape) == (tokens, 768)


@pytest.mark.parametrize(
    ("w", "h", "tiles"),
    [
        (32, 32, 1),  # one tile, no thumbnail
        (64, 32, 3),  # 2x1 grid + thumbnail
        (96, 32, 4),  # 3x1 + thumbnail
        (64, 64, 5),  # 2x2 wins the tie with 1x1 (area > half of 4 tiles) + thumbnail
        (1000, 500, 9),  # 4x2 + thumbnail
        (20, 400, 13),  # aspect 0.05: 1x12, the most extreme grid of <= 12 tiles + thumbnail
    ],
)
def test_image_expansion_tiles(
    config: dict[str, Any], tokenizer: Any, w: int, h: int, tiles: int
) -> None:
    """Configs without dynamic resolution tile like InternVL: 4 tokens a 32 px tile."""
    tiled = {**config, "vision_config": {"patch_size": 8}}
    proc = NemotronOmniProcessor.from_config(tiled, tokenizer)
    out = proc.process(USER.format("<image>"), [MediaItem("image", noise_image(w, h))])
    (item,) = out.items
    assert item.options["num_tiles"] == tiles
    assert count(out.input_ids, tokenizer, "<image>") == 4 * tiles
    assert tuple(item.data.shape) == (4 * tiles, 768)


def test_video_tubelets_with_timestamps(proc: ModalityProcessor, tokenizer: Any) -> None:
    # 8 frames at 2 fps -> 4 tubelets of 2 frames; 64 px square -> 8x8 patches -> 16 tokens.
    out = proc.process(USER.format("Describe: <video>"), [MediaItem("video", video(8))])
    block = "<img>" + "<image>" * 16 + "</img>"
    expected = "\n".join(
        f"Frame {2 * i + 1} sampled at {i:.2f} seconds and frame {2 * i + 2} sampled at "
        f"{i + 0.5:.2f} seconds: {block}"
        for i in range(4)
    )
    assert "Describe: " + expected + "<|im_end|>" in tokenizer.decode(out.input_ids)
    assert expected.startswith(
        "Frame 1 sampled at 0.00 seconds and frame 2 sampled at 0.50 seconds: <img>"
    )
    (item,) = out.items
    assert item.options["num_tubelets"] == 4 and item.options["tokens_per_tubelet"] == [16] * 4
    assert tuple(item.data.shape) == (64, 1536)


def test_video_odd_frames_and_aspect(proc: ModalityProcessor, tokenizer: Any) -> None:
    # 9 frames -> the last tubelet holds one frame; 64x36 -> 10x6 patches -> 15 tokens.
    out = proc.process(USER.format("<video>"), [MediaItem("video", video(9, w=64, h=36))])
    text = tokenizer.decode(out.input_ids)
    assert "\nFrame 9 sampled at 4.00 seconds: <img>" + "<image>" * 15 + "</img>" in text
    assert count(out.input_ids, tokenizer, "<image>") == 5 * 15


def test_video_single_frame_units_when_temporal_patch_is_one(
    config: dict[str, Any], tokenizer: Any
) -> None:
    cfg = {**config, "vision_config": {**config["vision_config"], "video_temporal_patch_size": 1}}
    proc = NemotronOmniProcessor.from_config(cfg, tokenizer)
    out = proc.process(USER.format("<video>"), [MediaItem("video", video(3, fps=1.0))])
    block = "<img>" + "<image>" * 16 + "</img>"
    expected = "".join(f"Frame {i + 1} sampled at {i:.2f} seconds: {block}" for i in range(3))
    assert expected in tokenizer.decode(out.input_ids)
    assert tuple(out.items[0].data.shape) == (48, 768)


@pytest.mark.parametrize(
    ("seconds", "tokens"),
    [
        (0.05, 2),  # padded to 0.1 s: 10 mel frames -> 5 -> 3 -> 2
        (1.0, 13),  # 100 -> 50 -> 25 -> 13
        (2.5, 32),  # 250 -> 125 -> 63 -> 32
        (30.0, 375),  # one full clip
        (31.0, 388),  # 375 + a 1 s clip
        (45.0, 563),  # 375 + a 15 s clip (188)
    ],
)
def test_audio_token_counts(
    proc: ModalityProcessor, tokenizer: Any, seconds: float, tokens: int
) -> None:
    out = proc.process(
        USER.format("Transcribe <so_embedding>"), [MediaItem("audio", sound(seconds))]
    )
    text = tokenizer.decode(out.input_ids)
    assert "Transcribe <so_start>" + "<so_embedding>" * tokens + "<so_end><|im_end|>" in text
    (item,) = out.items
    assert item.options["num_tokens"] == tokens and tuple(item.data.shape) == (tokens, 16)
    assert abs(tokens - 12.5 * max(seconds, 0.1)) <= 1 + seconds / 30  # ~12.5 tokens/s


def test_audio_in_video(proc: ModalityProcessor, tokenizer: Any) -> None:
    with_audio = MediaItem("video", video(4, audio_s=1.0), {"use_audio_in_video": True})
    out = proc.process(USER.format("<video>"), [with_audio])
    text = tokenizer.decode(out.input_ids)
    sound_block = "<so_start>" + "<so_embedding>" * 13 + "<so_end>"
    assert "</img>" + sound_block + "<|im_end|>" in text  # right after the last tubelet
    assert [i.modality for i in out.items] == ["video", "audio"]
    assert out.items[1].options["source"] == "video" and out.items[1].options["num_tokens"] == 13

    silent = MediaItem("video", video(4), {"use_audio_in_video": True})  # no audio track
    unasked = MediaItem("video", video(4, audio_s=1.0))
    for item in (silent, unasked):
        out = proc.process(USER.format("<video>"), [item])
        assert [i.modality for i in out.items] == ["video"]
        assert count(out.input_ids, tokenizer, "<so_embedding>") == 0


@pytest.mark.parametrize(("rate", "kept"), [(0.0, 64), (0.5, 32), (0.9, 16)])
def test_evs_counts(proc: ModalityProcessor, tokenizer: Any, rate: float, kept: int) -> None:
    # 4 tubelets x 16 tokens; keep max(16, int(64 * (1 - rate))): 64, 32, max(16, 6).
    item = MediaItem("video", video(8), {"video_pruning_rate": rate})
    out = proc.process(USER.format("<video>"), [item])
    assert count(out.input_ids, tokenizer, "<image>") == kept
    (result,) = out.items
    per = result.options["tokens_per_tubelet"]
    assert sum(per) == kept and per[0] == 16  # the first tubelet is always kept
    assert tuple(result.data.shape) == (kept, 1536)
    full = proc.process(USER.format("<video>"), [MediaItem("video", video(8))])
    assert len(full.input_ids) - len(out.input_ids) == 64 - kept


def test_evs_keeps_the_tokens_that_move(proc: ModalityProcessor) -> None:
    """A still video whose top half changes at tubelet 3 and then stays: EVS keeps tubelet
    1 whole and, beyond it, exactly the 8 changed tokens (2 of 4 token rows) of tubelet 3."""
    frames = np.full((8, 64, 64, 3), 100, dtype=np.uint8)
    frames[4:, :32] = np.random.default_rng(1).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    clip = SimpleNamespace(frames=frames, timestamps=[i * 0.5 for i in range(8)], audio=None)
    full = proc.process("<video>", [MediaItem("video", clip)]).items[0].data
    # rate 0.625: keep int(64 * 0.375) = 24 = 16 + 8; rate 0.75: keep max(16, 16) = 16.
    out = proc.process("<video>", [MediaItem("video", clip, {"video_pruning_rate": 0.625})])
    assert out.items[0].options["tokens_per_tubelet"] == [16, 0, 8, 0]
    assert torch.equal(out.items[0].data, torch.cat([full[:16], full[32:40]]))
    out = proc.process("<video>", [MediaItem("video", clip, {"video_pruning_rate": 0.75})])
    assert out.items[0].options["tokens_per_tubelet"] == [16, 0, 0, 0]


def test_positions_point_at_the_placeholders(proc: ModalityProcessor, tokenizer: Any) -> None:
    items = [
        MediaItem("image", noise_image(64, 48)),
        MediaItem(
            "video", video(8, audio_s=1.0), {"use_audio_in_video": True, "video_pruning_rate": 0.5}
        ),
        MediaItem("audio", sound(1.5)),
        MediaItem("image", noise_image(32, 32, seed=3)),
    ]
    out = proc.process(USER.format("a <image> b <video> c <so_embedding> d <image>"), items)
    ids = out.input_ids
    image_id, audio_id = (tokenizer.convert_tokens_to_ids(t) for t in ("<image>", "<so_embedding>"))
    assert [i.modality for i in out.items] == ["image", "video", "audio", "audio", "image"]
    seen: list[int] = []
    for item in out.items:
        pos = item.options["positions"]
        want = audio_id if item.modality == "audio" else image_id
        assert len(pos) == item.data.shape[0] == item.options["num_tokens"]
        assert all(ids[p] == want for p in pos)
        assert pos == sorted(pos) and (not seen or pos[0] > seen[-1])  # prompt order
        seen += pos
    assert sorted(seen) == [i for i, t in enumerate(ids) if t in (image_id, audio_id)]
    first = out.items[0].options["positions"]
    assert ids[first[0] - 1] == tokenizer.convert_tokens_to_ids("<img>")
    assert first == list(range(first[0], first[0] + 12))


def test_features_are_deterministic_and_content_dependent(proc: ModalityProcessor) -> None:
    def run(seed: int) -> list[torch.Tensor]:
        items = [
            MediaItem("image", noise_image(64, 48, seed)),
            MediaItem("video", video(4, seed=seed)),
            MediaItem("audio", sound(1.0, seed=seed)),
        ]
        return [i.data for i in proc.process("<image><video><so_embedding>", items).items]

    first, again, other = run(0), run(0), run(1)
    for a, b, c in zip(first, again, other, strict=True):
        assert a.dtype == torch.float32 and torch.equal(a, b)
        assert a.shape == c.shape and not torch.equal(a, c)


def test_mismatches_are_refused(proc: ModalityProcessor) -> None:
    with pytest.raises(ValueError, match="placeholders"):
        proc.process("<image><image>", [MediaItem("image", noise_image(32, 32))])
    with pytest.raises(ValueError, match="placeholder"):
        proc.process("<video>", [MediaItem("image", noise_image(32, 32))])
    bad_rate = SimpleNamespace(samples=np.zeros(8000, np.float32), duration=1.0, sample_rate=8000)
    with pytest.raises(ValueError, match="16000 Hz"):
        proc.process("<so_embedding>", [MediaItem("audio", bad_rate)])
    with pytest.raises(ValueError, match="video_pruning_rate"):
        proc.process("<video>", [MediaItem("video", video(4), {"video_pruning_rate": 1.0})])


def test_images_as_arrays_or_other_modes(proc: ModalityProcessor) -> None:
    pil = noise_image(64, 48)
    as_array = proc.process("<image>", [MediaItem("image", np.asarray(pil))]).items[0]
    rgba = proc.process("<image>", [MediaItem("image", pil.convert("RGBA"))]).items[0]
    reference = proc.process("<image>", [MediaItem("image", pil)]).items[0]
    assert torch.equal(as_array.data, reference.data) and torch.equal(rgba.data, reference.data)
