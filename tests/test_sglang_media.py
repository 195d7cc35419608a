"""Media on the SGLang path, on the CPU: our adapter's request for an engine that expands
media itself goes through SGLang's real ``GenerateReqInput`` normalisation into our
subclass of SGLang's Nemotron Omni processor (built with the tiny model's config), and
the prompt it expands must equal the one our CPU path builds for the same request:
per-request fps / num_frames, the soundtrack of a video, EVS rates.

Stub, and why: Parakeet's mel extractor needs librosa, which SGLang does not install;
SGLang's own ``audio_token_count`` still decides the audio token counts.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from PIL import Image

from omni_sglang.adapter.chat import prepare_chat
from omni_sglang.engines.sglang_backend import to_generate_req_input
from omni_sglang.errors import InvalidRequestError, UnsupportedFieldError
from omni_sglang.media import synth
from omni_sglang.state import ServerState
from tests.conftest import TINY, adapter_state, chat_request
from tests.test_modality_sglang import stub_extractor_class

pytestmark = pytest.mark.sglang

VIDEO = synth.video_bytes(4.0, (160, 120), 10)
VIDEO_WITH_SOUND = synth.video_bytes(3.0, (160, 120), 10, audio=True)
IMAGE = synth.image_bytes("PNG", (200, 120))
AUDIO = synth.audio_bytes("mp3", 2.5)


def uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def sglang_hf_config(tiny_model_path: Path, rate: float) -> Any:
    """SGLang's own config class for this model, from the tiny checkpoint's values."""
    import json

    from sglang.srt.configs.nano_nemotron_vl import NemotronH_Nano_Omni_Reasoning_V3_Config

    config = json.loads((tiny_model_path / "config.json").read_text())
    keys = ("force_image_size", "patch_size", "downsample_ratio", "use_thumbnail")
    return NemotronH_Nano_Omni_Reasoning_V3_Config(
        vision_config=config["vision_config"],
        llm_config={"hidden_size": 64},
        sound_config=config.get("sound_config"),
        norm_mean=config["norm_mean"],
        norm_std=config["norm_std"],
        video_pruning_rate=rate,
        architectures=["NemotronH_Nano_Omni_Reasoning_V3"],
        **{k: config[k] for k in keys},
    )


@asynccontextmanager
async def sglang_state(tiny_model_path: Path, **config: Any) -> AsyncIterator[ServerState]:
    """The adapter over our real ``SGLangEngine``, whose in-process ``sglang.Engine``
    (GPU only) is replaced by what the adapter reads of it: the tokenizer manager's
    tokenizer and model config (SGLang's own config class for this model)."""
    from transformers import AutoTokenizer

    from omni_sglang.config import load_config
    from omni_sglang.engines.sglang_backend import SGLangEngine
    from omni_sglang.plugins import registry
    from omni_sglang.state import ServerPlugins, ServerState

    fields = {"model_path": str(tiny_model_path), "served_model_name": [TINY], **config}
    cfg = load_config(fields, environ={})
    engine = SGLangEngine(cfg)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_path))
    hf = sglang_hf_config(tiny_model_path, cfg.video_pruning_rate)
    model = SimpleNamespace(context_len=16384, vocab_size=len(tokenizer), hf_config=hf)
    engine.tokenizer = tokenizer
    engine._engine = SimpleNamespace(
        tokenizer_manager=SimpleNamespace(tokenizer=tokenizer, model_config=model)
    )
    state = ServerState(cfg, engine, ServerPlugins.from_config(cfg, registry))
    state.prepare_plugins()
    yield state


@pytest.fixture(scope="module")
async def states(tiny_model_path: Path) -> AsyncIterator[tuple[ServerState, ServerState]]:
    """(CPU-path state, SGLang-path state): the same request through the CPU engine and
    through the sglang engine's side of the adapter."""
    async with adapter_state(tiny_model_path) as cpu, sglang_state(tiny_model_path) as sg:
        yield cpu, sg


@pytest.fixture(scope="module")
def processor_for(tiny_model_path: Path) -> Any:
    """Factory: our SGLang processor subclass for the tiny config at a server EVS rate."""
    from sglang.srt import runtime_context
    from sglang.srt.multimodal.processors import nano_nemotron_vl as nv
    from sglang.srt.server_args import ServerArgs
    from transformers import AutoTokenizer

    from omni_sglang_nemotron.sglang_processor import OmniNanoNemotronVLProcessor

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_path))

    def build(rate: float) -> Any:
        args = ServerArgs(model_path="dummy", device="cpu", context_length=16384)
        args.mm_process_config = {}
        runtime_context.publish(args, role="tokenizer")
        hf = sglang_hf_config(tiny_model_path, rate)
        return OmniNanoNemotronVLProcessor(hf, None, tokenizer, None)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nv, "ParakeetExtractor", stub_extractor_class())
        yield build


def user(*parts: dict[str, Any], text: str = "Describe.") -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]


def image_part(data: bytes = IMAGE) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": uri(data, "image/png")}}


def video_part(data: bytes = VIDEO) -> dict[str, Any]:
    return {"type": "video_url", "video_url": {"url": uri(data, "video/mp4")}}


def audio_part() -> dict[str, Any]:
    return {"type": "audio_url", "audio_url": {"url": uri(AUDIO, "audio/mpeg")}}


async def both_paths(
    states: tuple[ServerState, ServerState], processor: Any, **fields: Any
) -> tuple[list[int], Any, Any]:
    """Our CPU path's ids, and SGLang's processor output for the SGLang-path request
    after SGLang's own request normalisation (and the request object it saw)."""
    cpu, sg = states
    ours = (await prepare_chat(chat_request(**fields), cpu)).request
    theirs = (await prepare_chat(chat_request(**fields), sg)).request
    assert sg.engine.expands_media and theirs.mm_items is None and theirs.prompt is None
    obj = to_generate_req_input(theirs)
    obj.normalize_batch_and_arguments()
    out = await processor.process_mm_data_async(obj.image_data, obj.audio_data, obj.input_ids, obj)
    return list(ours.input_ids or []), out, obj


def count(ids: list[int], tokenizer: Any, token: str) -> int:
    return ids.count(tokenizer.convert_tokens_to_ids(token))


async def test_image_video_audio_expand_as_on_the_cpu_path(
    states: tuple[ServerState, ServerState], processor_for: Any
) -> None:
    processor = processor_for(0.0)
    messages = user(image_part(), video_part(), image_part(synth.image_bytes("PNG", (64, 64))))
    messages += user(audio_part(), text="and this")
    ours, out, obj = await both_paths(
        states, processor, messages=messages, mm_processor_kwargs={"video_pruning_rate": 0.0}
    )
    # What SGLang was handed: our decoded images, the fetched bytes, no URL anywhere;
    # the video's frames are planned here and decoded by SGLang only.
    assert all(isinstance(i, Image.Image) and i.mode == "RGB" for i in obj.image_data)
    assert len(obj.image_data) == 2
    assert obj.video_data[0].url == VIDEO and obj.audio_data == [AUDIO]
    assert out.input_ids == ours
    tok = processor.tokenizer
    assert count(ours, tok, "<image>") > 0 and count(ours, tok, "<so_embedding>") > 0
    kinds = sorted(str(item.modality) for item in out.mm_items)
    assert kinds == ["Modality.AUDIO", "Modality.IMAGE", "Modality.IMAGE", "Modality.VIDEO"]


@pytest.mark.parametrize(
    ("video", "frames"),
    [
        (None, 8),  # the 2 fps default over 4 s
        ({"fps": 1.0, "num_frames": -1}, 4),
        ({"num_frames": 6, "fps": -1}, 6),
        ({"fps": 3.0, "num_frames": 2}, 12),  # both: the larger count wins
    ],
)
async def test_per_request_frame_sampling_reaches_sglang(
    states: tuple[ServerState, ServerState], processor_for: Any, video: Any, frames: int
) -> None:
    fields: dict[str, Any] = {"media_io_kwargs": {"video": video}} if video else {}
    ours, out, _ = await both_paths(
        states,
        processor_for(0.0),
        messages=user(video_part()),
        mm_processor_kwargs={"video_pruning_rate": 0.0},
        **fields,
    )
    assert out.input_ids == ours
    (item,) = out.mm_items
    assert item.model_specific_data["frames_per_video"] == [frames]
    text = processor_for(0.0).tokenizer.decode(out.input_ids)
    assert text.count("sampled at") == frames  # "Frame i sampled at t seconds" per frame


async def test_soundtrack_follows_its_video(
    states: tuple[ServerState, ServerState], processor_for: Any
) -> None:
    """use_audio_in_video: the soundtrack's audio placeholder right after the frames, as
    on the CPU path; SGLang reads the MP4's audio track from the bytes we fetched."""
    processor = processor_for(0.0)
    ours, out, obj = await both_paths(
        states,
        processor,
        messages=user(video_part(VIDEO_WITH_SOUND)),
        mm_processor_kwargs={"use_audio_in_video": True, "video_pruning_rate": 0.0},
    )
    assert obj.audio_data == [VIDEO_WITH_SOUND]
    assert count(out.input_ids, processor.tokenizer, "<so_embedding>") > 0
    # SGLang's decoder and ours may differ by a few samples at the end of the track.
    audio_id = processor.tokenizer.convert_tokens_to_ids("<so_embedding>")
    first = out.input_ids.index(audio_id)
    assert ours.index(audio_id) == first and abs(len(out.input_ids) - len(ours)) <= 1
    # A silent video with the flag: frames only, on both paths.
    ours, out, obj = await both_paths(
        states,
        processor,
        messages=user(video_part()),
        mm_processor_kwargs={"use_audio_in_video": True, "video_pruning_rate": 0.0},
    )
    assert obj.audio_data is None and out.input_ids == ours


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.9])
async def test_per_request_evs_rate_reaches_sglang(
    states: tuple[ServerState, ServerState], processor_for: Any, rate: float
) -> None:
    processor = processor_for(0.5)  # the server's rate
    ours, out, _ = await both_paths(
        states,
        processor,
        messages=user(video_part()),
        mm_processor_kwargs={"video_pruning_rate": rate},
    )
    # The same prompt length and video token count; where the kept tokens sit differs:
    # SGLang spreads the count evenly over the tubelets (the model re-lays them out),
    # ours scores host features.
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert len(out.input_ids) == len(ours)
    assert out.input_ids.count(image_id) == ours.count(image_id)
    (item,) = out.mm_items
    assert item.model_specific_data["omni_video_pruning_rate"] == rate
    # Another rate than the server's: another prefix-cache identity for the same frames.
    _, at_server_rate, _ = await both_paths(
        states,
        processor,
        messages=user(video_part()),
        mm_processor_kwargs={"video_pruning_rate": 0.5},
    )
    (plain,) = at_server_rate.mm_items
    assert plain.hash is None  # SGLang hashes the features itself
    assert (item.hash is None) == (rate == 0.5)


async def test_per_request_rate_without_server_evs_is_refused(
    states: tuple[ServerState, ServerState], processor_for: Any
) -> None:
    with pytest.raises(ValueError, match="needs EVS enabled"):
        await both_paths(
            states,
            processor_for(0.0),
            messages=user(video_part()),
            mm_processor_kwargs={"video_pruning_rate": 0.5},
        )


async def test_adapter_refuses_a_rate_sglang_could_not_apply(tiny_model_path: Path) -> None:
    async with sglang_state(tiny_model_path, video_pruning_rate=0.0) as sg:
        with pytest.raises(InvalidRequestError, match="NIM_VIDEO_PRUNING_RATE"):
            await prepare_chat(
                chat_request(
                    messages=user(video_part()), mm_processor_kwargs={"video_pruning_rate": 0.3}
                ),
                sg,
            )
        # The server's own rate (0) is fine.
        await prepare_chat(chat_request(messages=user(video_part())), sg)


async def test_unset_max_tokens_leaves_the_room_to_sglang(
    states: tuple[ServerState, ServerState],
) -> None:
    """Only SGLang knows the expanded prompt's length: an unset max_tokens goes as
    SGLang's unset (its scheduler fills the context's room); a set one goes as it is."""
    from tests.test_sglang_backend import sglang_sampling_params

    _, sg = states
    for fields, expected in (({}, None), ({"max_tokens": 50}, 50)):
        prepared = await prepare_chat(chat_request(messages=user(image_part()), **fields), sg)
        obj = to_generate_req_input(prepared.request)
        obj.normalize_batch_and_arguments()
        assert obj.sampling_params["max_new_tokens"] == expected
        assert sglang_sampling_params(obj.sampling_params, sg.tokenizer).max_new_tokens == expected
    text_only = await prepare_chat(chat_request(), sg)  # no media: we know the length
    assert text_only.request.sampling_params["max_new_tokens"] > 0


async def test_concurrent_requests_keep_their_own_video_options(
    states: tuple[ServerState, ServerState], processor_for: Any
) -> None:
    processor = processor_for(0.0)

    async def frames(n: int) -> int:
        _, out, _ = await both_paths(
            states,
            processor,
            messages=user(video_part()),
            media_io_kwargs={"video": {"num_frames": n, "fps": -1}},
            mm_processor_kwargs={"video_pruning_rate": 0.0},
        )
        return int(out.mm_items[0].model_specific_data["frames_per_video"][0])

    assert await asyncio.gather(*(frames(n) for n in (2, 4, 6, 8, 2, 6))) == [2, 4, 6, 8, 2, 6]


async def test_batches_keep_per_video_options(
    states: tuple[ServerState, ServerState], processor_for: Any
) -> None:
    """SGLang splits a batch with ``obj[i]``, which keeps ``VideoData.preprocess_kwargs``
    (and drops request-level media flags, which is why none are used)."""
    from sglang.srt.managers.io_struct import GenerateReqInput

    _, sg = states
    one, two = [
        (
            await prepare_chat(
                chat_request(
                    messages=user(video_part()),
                    media_io_kwargs={"video": {"num_frames": n, "fps": -1}},
                ),
                sg,
            )
        ).request
        for n in (2, 6)
    ]
    batch = GenerateReqInput(
        input_ids=[one.input_ids, two.input_ids],
        video_data=[one.video_data, two.video_data],
        sampling_params=[one.sampling_params, two.sampling_params],
    )
    batch.normalize_batch_and_arguments()
    processor = processor_for(0.5)  # the requests carry the server default, 0.5
    got = []
    for i in range(2):
        sub = batch[i]
        out = await processor.process_mm_data_async(None, None, sub.input_ids, sub)
        got.append(out.mm_items[0].model_specific_data["frames_per_video"])
    assert got == [[2], [6]]


def test_sglang_style_fps_options_are_honoured(processor_for: Any) -> None:
    """Callers of SGLang's own API may name fps / num_frames instead of frames."""
    from sglang.srt.utils.common import VideoData

    processor = processor_for(0.0)
    prompt = processor.tokenizer("<video> what happens?", add_special_tokens=False).input_ids
    for kwargs, frames in (({"fps": 1.0}, 4), ({"num_frames": 3}, 3), ({}, 8)):
        request = SimpleNamespace(
            video_data=[VideoData(url=VIDEO, preprocess_kwargs=kwargs)], use_audio_in_video=False
        )
        out = asyncio.run(processor.process_mm_data_async(None, None, prompt, request))
        assert out.mm_items[0].model_specific_data["frames_per_video"] == [frames], kwargs
    # Above the cap: a ValueError, which SGLang answers with a 400.
    request = SimpleNamespace(
        video_data=[VideoData(url=VIDEO, preprocess_kwargs={"num_frames": 300})],
        use_audio_in_video=False,
    )
    with pytest.raises(ValueError, match="limit of 128 frames"):
        asyncio.run(processor.process_mm_data_async(None, None, prompt, request))


def test_the_model_prunes_at_the_items_rate() -> None:
    """Scheduler side: SGLang's own ``EVS.evs_video`` keeps the count the processor
    allocated for the item's rate, and the server's rate without one."""
    from sglang.srt.managers.schedule_batch import Modality, MultimodalDataItem
    from sglang.srt.multimodal.evs import EVS, EVSConfig
    from sglang.srt.multimodal.evs.evs_core import compute_retained_tokens_count

    from omni_sglang_nemotron.sglang_processor import ITEM_RATE_KEY, evs_video_at_item_rate

    frames, rows, cols, hidden = 6, 4, 4, 8

    class Model(EVS):
        @staticmethod
        def create_evs_config(config: Any) -> EVSConfig:
            return EVSConfig(video_pruning_rate=config.video_pruning_rate)

        def get_video_feature(self, items: list[Any]) -> torch.Tensor:
            return torch.randn(
                frames * rows * cols, hidden, generator=torch.Generator().manual_seed(0)
            )

    model = Model(SimpleNamespace(video_pruning_rate=0.5))

    def kept(rate: float | None) -> int:
        data: dict[str, Any] = {"thw_grids": [(frames, rows, cols)]}
        if rate is not None:
            data[ITEM_RATE_KEY] = rate
        item = MultimodalDataItem(modality=Modality.VIDEO, model_specific_data=data)
        result = evs_video_at_item_rate(EVS.evs_video, model, [item])
        return int(result.embedding.shape[0])

    for rate in (0.0, 0.5, 0.9):
        assert kept(rate) == compute_retained_tokens_count(rows * cols, frames, rate)
    # Single-frame videos of two requests at two rates come in one call: nothing to prune.
    singles = [
        MultimodalDataItem(
            modality=Modality.VIDEO,
            model_specific_data={"thw_grids": [(1, rows, cols)], ITEM_RATE_KEY: rate},
        )
        for rate in (0.2, 0.9)
    ]
    assert evs_video_at_item_rate(EVS.evs_video, model, singles).shape[0] == frames * rows * cols
    assert kept(None) == compute_retained_tokens_count(rows * cols, frames, 0.5)
    assert model.evs_config.video_pruning_rate == 0.5  # restored


async def test_a_modality_plugin_without_the_sglang_form_is_a_clear_error(
    tiny_model_path: Path,
) -> None:
    """A third party's processor that only implements ``process``: a 4xx naming why."""
    from omni_sglang_testplug import CountMedia

    async with sglang_state(tiny_model_path) as sg:
        sg.modality = CountMedia(sg.tokenizer)
        with pytest.raises(UnsupportedFieldError, match="CountMedia cannot prepare media"):
            await prepare_chat(chat_request(messages=user(image_part())), sg)


async def test_placeholder_text_in_the_prompt_is_refused(
    states: tuple[ServerState, ServerState],
) -> None:
    _, sg = states
    with pytest.raises(InvalidRequestError, match="2 media placeholders for 1 media items"):
        await prepare_chat(chat_request(messages=user(image_part(), text="also <image>")), sg)
