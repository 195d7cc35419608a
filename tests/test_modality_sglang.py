"""nemotron_omni against SGLang 0.5.23 itself: its geometry, EVS and Parakeet functions,
and its own Nemotron Omni processor (``NanoNemotronVLImageProcessor``) run on the CPU with
tiny configs, comparing whole ``input_ids``.

SGLang's own Parakeet feature extractor (``ParakeetExtractor``, transformers' mel
features) runs as is. Two stand-ins remain, both where SGLang would decode the media
itself: its audio loader takes bytes, paths and URLs only, so it passes our sample arrays
through; its frame sampler reads a video decoder, so ``parse_video`` returns our frames
with our timestamps. (``tests/test_sglang_media`` runs SGLang's own decoding.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoTokenizer

from omni_sglang.plugin_api import MediaItem
from omni_sglang_nemotron import evs, mm_geometry
from omni_sglang_nemotron.mm_config import AudioConfig
from omni_sglang_nemotron.modality import NemotronOmniProcessor

pytestmark = pytest.mark.sglang

SIZES = [(1, 1), (8, 8), (33, 17), (64, 48), (100, 1000), (640, 480), (1920, 1080), (4000, 300)]
REAL_SOUND = {
    "sampling_rate": 16000,
    "subsampling_factor": 8,
    "subsampling_conv_kernel_size": 3,
    "subsampling_conv_stride": 2,
    "num_mel_bins": 128,
}


@pytest.fixture(scope="module")
def sg() -> Any:
    from sglang.srt.multimodal import internvl_utils
    from sglang.srt.multimodal.evs import evs_core

    return SimpleNamespace(internvl=internvl_utils, evs=evs_core)


# --- SGLang's functions ------------------------------------------------------------------------


@pytest.mark.parametrize(("patch", "lo", "hi"), [(8, 16, 256), (16, 1024, 13312), (8, 4, 64)])
def test_dynamic_image_sizes_match(sg: Any, patch: int, lo: int, hi: int) -> None:
    for w, h in SIZES:
        ours = mm_geometry.dynamic_image_size(
            w, h, patch_size=patch, downsample_ratio=0.5, min_num_patches=lo, max_num_patches=hi
        )
        assert ours == sg.internvl.compute_dynamic_image_size(w, h, patch, 0.5, lo, hi)
    for budget in (4, 30, 100, 1000, 100000):
        ours_all = mm_geometry.budgeted_image_sizes(
            SIZES,
            budget,
            patch_size=patch,
            downsample_ratio=0.5,
            min_num_patches=lo,
            max_num_patches=hi,
        )
        assert ours_all == sg.internvl.compute_budgeted_image_sizes(
            SIZES, budget, patch, 0.5, lo, hi
        )


def test_tile_counts_match(sg: Any) -> None:
    for (w, h), side in itertools.product([*SIZES, (64, 64), (96, 32), (1000, 500)], (32, 512)):
        if side == 512 and w * h > 2_000_000:
            continue  # same rule, just slow to resize
        tiles = sg.internvl.dynamic_preprocess(
            Image.new("RGB", (w, h)), min_num=1, max_num=12, image_size=side, use_thumbnail=True
        )
        grid = mm_geometry.closest_tile_grid(w, h, min_num=1, max_num=12, image_size=side)
        assert mm_geometry.tile_count(grid, use_thumbnail=True) == len(tiles), (w, h, side)


def test_video_frame_sizes_match(sg: Any) -> None:
    for (w, h), target, keep, patch in itertools.product(
        SIZES, (0, 64, 1024), (True, False), (8, 16)
    ):
        ours = mm_geometry.video_frame_size(
            w,
            h,
            target_num_patches=target,
            maintain_aspect_ratio=keep,
            patch_size=patch,
            downsample_ratio=0.5,
        )
        theirs = sg.internvl.get_video_target_size_and_feature_size(w, h, target, keep, patch, 0.5)
        assert ours == theirs


def test_audio_token_counts_match() -> None:
    from sglang.srt.models.parakeet import ParakeetExtractor
    from transformers import PretrainedConfig

    extractor = ParakeetExtractor(PretrainedConfig.from_dict(REAL_SOUND))
    ours = AudioConfig(**{k: v for k, v in REAL_SOUND.items()})
    for n in (0, 1, 1599, 1600, 1601, 16000, 24000, 40000, 479999, 480000, 480001, 720000, 10**7):
        assert mm_geometry.audio_token_count(n, ours) == extractor.audio_token_count(n), n


def test_evs_counts_match(sg: Any) -> None:
    for tpf, frames, rate in itertools.product(
        (1, 15, 16, 256), (1, 2, 3, 4, 31, 64), (0.0, 0.1, 0.3, 0.5, 0.7, 0.75, 0.9, 0.99)
    ):
        want = sg.evs.compute_retained_tokens_count(tokens_per_frame=tpf, num_frames=frames, q=rate)
        assert evs.retained_count(tpf, frames, rate) == want
        if rate > 0:
            split = sg.evs.tokens_per_frame(q=rate, num_frames=frames, frame_num_tokens=tpf)
            assert evs.placeholder_split(tpf, frames, rate) == split


def test_evs_masks_match(sg: Any) -> None:
    gen = torch.Generator().manual_seed(0)
    for frames, rows, cols, rate in [
        (4, 4, 4, 0.5),
        (8, 3, 5, 0.7),
        (5, 2, 2, 0.9),
        (3, 4, 4, 0.2),
    ]:
        feats = torch.randn(frames * rows * cols, 12, generator=gen)
        feats[rows * cols : 2 * rows * cols] = feats[: rows * cols]  # a repeated frame
        theirs = sg.evs.compute_retention_mask(feats, (frames, rows, cols), 1, rate)
        assert torch.equal(evs.retention_mask(feats, frames, rate), theirs)


# --- SGLang's Nemotron Omni processor -------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_model_path: Path) -> tuple[Any, dict[str, Any]]:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_path))
    return tokenizer, json.loads((tiny_model_path / "config.json").read_text())


@pytest.fixture(scope="module")
def sglang_processor(monkeypatch_module: pytest.MonkeyPatch) -> Any:
    """Factory: SGLang's processor for a config (checkpoint keys) and a context length."""
    from sglang.srt import runtime_context
    from sglang.srt.configs.nano_nemotron_vl import NemotronH_Nano_Omni_Reasoning_V3_Config
    from sglang.srt.multimodal.processors import base_processor
    from sglang.srt.multimodal.processors import nano_nemotron_vl as nv
    from sglang.srt.server_args import ServerArgs

    monkeypatch_module.setattr(base_processor, "load_audio", lambda data, sr=None, mono=True: data)

    class Processor(nv.NanoNemotronVLImageProcessor):
        @staticmethod
        def parse_video(video: Any) -> tuple[np.ndarray, list[float]]:
            return video, [i * 0.5 for i in range(len(video))]

    def build(config: dict[str, Any], tokenizer: Any, context_length: int) -> Any:
        args = ServerArgs(
            model_path="dummy", device="cpu", context_length=context_length, mm_process_config={}
        )
        runtime_context.publish(args, role="tokenizer")
        keys = ("force_image_size", "patch_size", "downsample_ratio", "use_thumbnail")
        hf = NemotronH_Nano_Omni_Reasoning_V3_Config(
            vision_config=config["vision_config"],
            llm_config={"hidden_size": 64},
            sound_config=config.get("sound_config"),
            norm_mean=config["norm_mean"],
            norm_std=config["norm_std"],
            video_pruning_rate=config.get("video_pruning_rate", 0.0),
            **{k: config[k] for k in keys},
        )
        return Processor(hf, None, tokenizer, None)

    return build


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def run_both(
    config: dict[str, Any],
    tokenizer: Any,
    build: Any,
    *,
    images: list[tuple[int, int]],
    frames: np.ndarray | None,
    audio_s: list[float],
    context_length: int = 16384,
    as_ids: bool = False,
) -> tuple[list[int], Any, Any]:
    """Our processor and SGLang's on the same prompt and media. SGLang gets the prompt as
    text (what its chat path passes) or, with ``as_ids``, as token ids: its text path puts
    every image of a prompt at the first ``<image>``, its id path expands each in place."""
    marks = ["<image>"] * len(images) + ["<video>"] * (frames is not None)
    text = "Look: " + " and ".join(marks + ["<so_embedding>"] * len(audio_s))
    prompt = f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n<think>\n"
    pil = [Image.fromarray(noise((h, w, 3), i)) for i, (w, h) in enumerate(images)]
    sounds = [
        np.random.default_rng(9).standard_normal(int(s * 16000)).astype(np.float32) for s in audio_s
    ]
    request = SimpleNamespace(
        video_data=[frames] if frames is not None else None, use_audio_in_video=False
    )
    theirs = asyncio.run(
        build(config, tokenizer, context_length).process_mm_data_async(
            pil or None,
            sounds or None,
            tokenizer(prompt, add_special_tokens=False).input_ids if as_ids else prompt,
            request,
        )
    )
    ours_proc = NemotronOmniProcessor.from_config(
        {**config, "max_model_len": context_length}, tokenizer
    )
    items = [MediaItem("image", p) for p in pil]
    if frames is not None:
        clip = SimpleNamespace(frames=frames, timestamps=[i * 0.5 for i in range(len(frames))])
        items.append(MediaItem("video", clip))
    for s in sounds:
        items.append(MediaItem("audio", SimpleNamespace(samples=s, sample_rate=16000)))
    ours = ours_proc.process(prompt, items)
    return list(theirs.input_ids), theirs, ours


def test_same_input_ids_as_sglang(tiny: tuple, sglang_processor: Any) -> None:
    tokenizer, config = tiny
    theirs, output, ours = run_both(
        config,
        tokenizer,
        sglang_processor,
        images=[(640, 480)],
        frames=noise((9, 36, 64, 3), 5),
        audio_s=[31.0],
    )
    assert ours.input_ids == theirs
    image_id, audio_id = (tokenizer.convert_tokens_to_ids(t) for t in ("<image>", "<so_embedding>"))
    assert theirs.count(image_id) == 63 + 5 * 15
    assert theirs.count(audio_id) == 388
    # Parakeet's log-mel features of the 31 s: two clips, the checkpoint's mel bins.
    (audio,) = [item for item in output.mm_items if item.is_audio()]
    clips, _, bins = audio.feature.shape
    assert (clips, bins) == (2, config["sound_config"]["num_mel_bins"])
    assert audio.feature.abs().sum() > 0


def test_same_input_ids_as_sglang_for_several_items(tiny: tuple, sglang_processor: Any) -> None:
    """Several images or audios: SGLang's text path misplaces them (all images at the first
    ``<image>``; a second audio lands inside the first's expansion), its id path does not."""
    tokenizer, config = tiny
    theirs, _, ours = run_both(
        config,
        tokenizer,
        sglang_processor,
        images=[(64, 48), (640, 480), (8, 8)],
        frames=None,
        audio_s=[2.5, 1.5],
        as_ids=True,
    )
    assert ours.input_ids == theirs
    assert theirs.count(tokenizer.convert_tokens_to_ids("<image>")) == 12 + 63 + 4
    assert theirs.count(tokenizer.convert_tokens_to_ids("<so_embedding>")) == 32 + 19


def test_same_input_ids_with_a_small_context(tiny: tuple, sglang_processor: Any) -> None:
    """Images share max_model_len minus the text: SGLang shrinks them; so do we."""
    tokenizer, config = tiny
    theirs, _, ours = run_both(
        config,
        tokenizer,
        sglang_processor,
        images=[(640, 480), (1000, 1000), (300, 200)],
        frames=None,
        audio_s=[],
        context_length=120,
        as_ids=True,
    )
    assert ours.input_ids == theirs
    assert sum(i.options["num_tokens"] for i in ours.items) < 3 * 63


def test_same_input_ids_with_tiles(tiny: tuple, sglang_processor: Any) -> None:
    """A config without dynamic resolution nor video patch target: InternVL tiles."""
    tokenizer, config = tiny
    tiled = {**config, "vision_config": {"patch_size": 8, "video_temporal_patch_size": 2}}
    for size in [(32, 32), (64, 32), (1000, 500), (20, 400)]:
        theirs, _, ours = run_both(
            tiled,
            tokenizer,
            sglang_processor,
            images=[size],
            frames=noise((5, 40, 70, 3), 2),
            audio_s=[0.05],
        )
        assert ours.input_ids == theirs, size
    theirs, _, ours = run_both(
        tiled,
        tokenizer,
        sglang_processor,
        images=[(32, 32), (64, 32), (1000, 500), (20, 400)],
        frames=None,
        audio_s=[],
        as_ids=True,
    )
    assert ours.input_ids == theirs
    assert theirs.count(tokenizer.convert_tokens_to_ids("<image>")) == 4 * (1 + 3 + 9 + 13)


@pytest.mark.parametrize("rate", [0.5, 0.9])
def test_evs_counts_equal_sglang(tiny: tuple, sglang_processor: Any, rate: float) -> None:
    """SGLang spreads EVS placeholders evenly and the model moves them to the tubelets that
    kept tokens; our prompt has the final layout: the same after that move."""
    from sglang.srt.multimodal.evs.evs_core import replace_offsets_with_tokens_per_frame

    tokenizer, config = tiny
    pruned = {**config, "video_pruning_rate": rate}
    theirs, output, ours = run_both(
        pruned,
        tokenizer,
        sglang_processor,
        images=[(64, 48)],
        frames=noise((8, 64, 64, 3), 3),
        audio_s=[1.0],
    )
    assert len(ours.input_ids) == len(theirs)
    (video,) = [i for i in output.mm_items if i.is_video()]
    (item,) = [i for i in ours.items if i.modality == "video"]
    kept = item.options["tokens_per_tubelet"]
    assert sum(kept) == evs.retained_count(16, 4, rate) == {0.5: 32, 0.9: 16}[rate]
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    moved = replace_offsets_with_tokens_per_frame(theirs, kept, video.offsets, image_id)
    assert moved == ours.input_ids
