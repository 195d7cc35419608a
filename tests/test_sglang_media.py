"""Media on the SGLang path, against SGLang's real runtime on this CPU: an in-process
``SGLangEngine`` on ``tiny-omni`` (Nemotron 3 Nano Omni's own architecture), our adapter
over it, and the processor SGLang's tokenizer manager built (our subclass of SGLang's
Nemotron Omni processor, put in place by our SGLang plugin). Our adapter's request goes
through SGLang's ``GenerateReqInput`` normalisation into that processor, called as the
tokenizer manager calls it, and the prompt it expands must equal the one our CPU path
(``tiny``: the same media settings) builds for the same request: per-request fps /
num_frames, a video's soundtrack, EVS rates. An image and a video request also run
through the whole runtime.

The engine runs EVS at NIM's default rate (0.5), so per-request rates apply. What needs a
server without EVS gets no second engine (about 40 s and 3 GB): SGLang's refusal comes
from a processor SGLang's own ``get_mm_processor`` builds from the engine's config at rate
0; our adapter's, which reads only our config, from an adapter whose config says rate 0
over the same engine. The scheduler-side EVS hook is checked on SGLang's ``EVS.evs_video``
with a minimal model (the real one lives in SGLang's scheduler; the video generate runs
it there).
"""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
import torch
from PIL import Image

from omni_sglang.adapter.chat import prepare_chat
from omni_sglang.config import load_config
from omni_sglang.engines.sglang_backend import SGLangEngine, to_generate_req_input
from omni_sglang.errors import InvalidRequestError, UnsupportedFieldError
from omni_sglang.media import synth
from omni_sglang.plugins import registry
from omni_sglang.state import ServerPlugins, ServerState
from omni_sglang.tiny.model import ensure_tiny_model
from tests.conftest import (
    CACHE,
    TINY,
    adapter_state,
    chat_request,
    new_children,
    sglang_kills_only,
)

pytestmark = pytest.mark.sglang

VIDEO = synth.video_bytes(4.0, (160, 120), 10)
VIDEO_WITH_SOUND = synth.video_bytes(3.0, (160, 120), 10, audio=True)
IMAGE = synth.image_bytes("PNG", (200, 120))
AUDIO = synth.audio_bytes("mp3", 2.5)
States = tuple[ServerState, ServerState]  # (CPU path, SGLang path)
#: SGLang's KV pool: enough for these prompts, small (other test servers share the RAM).
SGLANG_ARGS = ["--max-total-tokens", "131072"]


def uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def server_fields(**config: Any) -> dict[str, Any]:
    path = ensure_tiny_model(CACHE, "tiny-omni")
    fields = {"model_path": str(path), "served_model_name": [TINY], "sglang_args": SGLANG_ARGS}
    return {**fields, **config}


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[SGLangEngine]:
    """SGLang's runtime in this process on ``tiny-omni``, at the default EVS rate (0.5)."""
    before = {p.pid for p in psutil.Process().children()}
    backend = SGLangEngine(load_config(server_fields(), environ={}), "cpu")
    await backend.start()
    sglang_children = new_children(before)
    assert sorted(p.name() for p in sglang_children) == ["sglang::detokenizer", "sglang::scheduler"]
    yield backend
    with sglang_kills_only(backend, sglang_children):
        await backend.shutdown()
    assert not new_children(before)  # nor anything its processors started since


def sglang_state(engine: SGLangEngine, **config: Any) -> ServerState:
    """Our adapter over the real engine, with the engine's config (and ``config``)."""
    cfg = load_config(server_fields(**config), environ={})
    state = ServerState(cfg, engine, ServerPlugins.from_config(cfg, registry))
    state.prepare_plugins()
    return state


@pytest.fixture(scope="module")
async def states(tiny_model_path: Path, engine: SGLangEngine) -> AsyncIterator[States]:
    """(CPU-path state, SGLang-path state): the same request through the CPU engine and
    through the adapter over SGLang's runtime."""
    async with adapter_state(tiny_model_path) as cpu:
        yield cpu, sglang_state(engine)


@pytest.fixture(scope="module")
def processor(engine: SGLangEngine) -> Any:
    """The processor SGLang's tokenizer manager built: ours, registered by our plugin."""
    from omni_sglang_nemotron.sglang_processor import OmniNanoNemotronVLProcessor

    built = engine._engine.tokenizer_manager.mm_processor
    assert type(built) is OmniNanoNemotronVLProcessor
    return built


@pytest.fixture(scope="module")
def processor_without_evs(engine: SGLangEngine, processor: Any) -> Iterator[Any]:
    """What SGLang's tokenizer manager builds on a server at EVS rate 0, by SGLang's own
    factory from the engine's own config (only its rate changed)."""
    from sglang.srt.managers.multimodal_processor import get_mm_processor

    manager = engine._engine.tokenizer_manager
    hf_config = copy.deepcopy(manager.model_config.hf_config)
    hf_config.video_pruning_rate = 0.0
    args = (manager.server_args, manager.processor, processor.transport_mode)
    built = get_mm_processor(hf_config, *args, model_config=manager.model_config)
    assert type(built) is type(processor) and built.evs.evs_config is None
    yield built
    built.shutdown()


def user(*parts: dict[str, Any], text: str = "Describe.") -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]


def image_part(data: bytes = IMAGE) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": uri(data, "image/png")}}


def video_part(data: bytes = VIDEO) -> dict[str, Any]:
    return {"type": "video_url", "video_url": {"url": uri(data, "video/mp4")}}


def audio_part() -> dict[str, Any]:
    return {"type": "audio_url", "audio_url": {"url": uri(AUDIO, "audio/mpeg")}}


async def sglang_expands(processor: Any, obj: Any, engine: Any) -> Any:
    """SGLang's processor on a normalised ``GenerateReqInput``, as the tokenizer manager
    runs it (``_tokenize_one_request``): media lists, token ids as the prompt (the
    processor prefers them), the manager's input limit."""
    for key in ("image_data", "video_data", "audio_data"):
        value = getattr(obj, key)
        if value is not None and not isinstance(value, list):
            setattr(obj, key, [value])
    assert processor.prefer_tokenized_input and obj.input_ids is not None
    return await processor.process_mm_data_async(
        image_data=obj.image_data,
        audio_data=obj.audio_data,
        input_text=obj.input_ids,
        request_obj=obj,
        max_req_input_len=engine._engine.tokenizer_manager.max_req_input_len,
    )


async def both_paths(
    states: States, processor: Any, rate: float = 0.0, **fields: Any
) -> tuple[list[int], Any, Any]:
    """Our CPU path's ids, and SGLang's processor output for the SGLang-path request
    after SGLang's own request normalisation (and the request object it saw). Videos at
    EVS ``rate`` (0 unless a test names one: every frame's tokens)."""
    cpu, sg = states
    mm = fields.pop("mm_processor_kwargs", {})
    fields["mm_processor_kwargs"] = {"video_pruning_rate": rate, **mm}
    ours = (await prepare_chat(chat_request(**fields), cpu)).request
    theirs = (await prepare_chat(chat_request(**fields), sg)).request
    assert sg.engine.expands_media and theirs.mm_items is None and theirs.prompt is None
    obj = to_generate_req_input(theirs)
    obj.normalize_batch_and_arguments()
    out = await sglang_expands(processor, obj, sg.engine)
    return list(ours.input_ids or []), out, obj


def frames_io(n: int) -> dict[str, Any]:
    return {"video": {"num_frames": n, "fps": -1}}


def count(ids: list[int], tokenizer: Any, token: str) -> int:
    return ids.count(tokenizer.convert_tokens_to_ids(token))


async def test_image_video_audio_expand_as_on_the_cpu_path(states: States, processor: Any) -> None:
    messages = user(image_part(), video_part(), image_part(synth.image_bytes("PNG", (64, 64))))
    messages += user(audio_part(), text="and this")
    ours, out, obj = await both_paths(states, processor, messages=messages)
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
    states: States, processor: Any, video: Any, frames: int
) -> None:
    fields: dict[str, Any] = {"media_io_kwargs": {"video": video}} if video else {}
    ours, out, _ = await both_paths(states, processor, messages=user(video_part()), **fields)
    assert out.input_ids == ours
    (item,) = out.mm_items
    assert item.model_specific_data["frames_per_video"] == [frames]
    text = processor.tokenizer.decode(out.input_ids)
    assert text.count("sampled at") == frames  # "Frame i sampled at t seconds" per frame


async def test_soundtrack_follows_its_video(states: States, processor: Any) -> None:
    """use_audio_in_video: the soundtrack's audio placeholder right after the frames, as
    on the CPU path; SGLang reads the MP4's audio track from the bytes we fetched."""
    flag = {"use_audio_in_video": True}
    ours, out, obj = await both_paths(
        states, processor, messages=user(video_part(VIDEO_WITH_SOUND)), mm_processor_kwargs=flag
    )
    assert obj.audio_data == [VIDEO_WITH_SOUND]
    assert count(out.input_ids, processor.tokenizer, "<so_embedding>") > 0
    # SGLang's decoder and ours may differ by a few samples at the end of the track.
    audio_id = processor.tokenizer.convert_tokens_to_ids("<so_embedding>")
    first = out.input_ids.index(audio_id)
    assert ours.index(audio_id) == first and abs(len(out.input_ids) - len(ours)) <= 1
    # A silent video with the flag: frames only, on both paths.
    ours, out, obj = await both_paths(
        states, processor, messages=user(video_part()), mm_processor_kwargs=flag
    )
    assert obj.audio_data is None and out.input_ids == ours


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.9])
async def test_per_request_evs_rate_reaches_sglang(
    states: States, processor: Any, rate: float
) -> None:
    assert processor.evs.evs_config.video_pruning_rate == 0.5  # the server's rate
    ours, out, _ = await both_paths(states, processor, rate, messages=user(video_part()))
    # The same prompt length and video token count; where the kept tokens sit differs:
    # SGLang spreads the count evenly over the tubelets (the model re-lays them out),
    # ours scores host features.
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert len(out.input_ids) == len(ours)
    assert out.input_ids.count(image_id) == ours.count(image_id)
    (item,) = out.mm_items
    assert item.model_specific_data["omni_video_pruning_rate"] == rate
    # Another rate than the server's: another prefix-cache identity for the same frames.
    _, at_server_rate, _ = await both_paths(states, processor, 0.5, messages=user(video_part()))
    (plain,) = at_server_rate.mm_items
    assert plain.hash is None  # SGLang hashes the features itself
    assert (item.hash is None) == (rate == 0.5)


async def test_per_request_rate_without_server_evs_is_refused(
    states: States, processor_without_evs: Any
) -> None:
    with pytest.raises(ValueError, match="needs EVS enabled"):
        await both_paths(states, processor_without_evs, 0.5, messages=user(video_part()))


async def test_adapter_refuses_a_rate_sglang_could_not_apply(engine: SGLangEngine) -> None:
    """Our adapter decides from our config alone (the rate it would start SGLang with)."""
    sg = sglang_state(engine, video_pruning_rate=0.0)
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
    states: States,
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
    states: States, processor: Any
) -> None:
    async def frames(n: int) -> int:
        _, out, _ = await both_paths(
            states, processor, messages=user(video_part()), media_io_kwargs=frames_io(n)
        )
        return int(out.mm_items[0].model_specific_data["frames_per_video"][0])

    assert await asyncio.gather(*(frames(n) for n in (2, 4, 6, 8, 2, 6))) == [2, 4, 6, 8, 2, 6]


async def test_batches_keep_per_video_options(states: States, processor: Any) -> None:
    """SGLang splits a batch with ``obj[i]``, which keeps ``VideoData.preprocess_kwargs``
    (and drops request-level media flags, which is why none are used)."""
    from sglang.srt.managers.io_struct import GenerateReqInput

    _, sg = states
    requests = [
        chat_request(messages=user(video_part()), media_io_kwargs=frames_io(n)) for n in (2, 6)
    ]
    one, two = [(await prepare_chat(request, sg)).request for request in requests]
    batch = GenerateReqInput(
        input_ids=[one.input_ids, two.input_ids],
        video_data=[one.video_data, two.video_data],
        sampling_params=[one.sampling_params, two.sampling_params],
    )
    batch.normalize_batch_and_arguments()
    got = []
    for i in range(2):  # the requests carry the server's default rate, 0.5
        out = await sglang_expands(processor, batch[i], sg.engine)
        got.append(out.mm_items[0].model_specific_data["frames_per_video"])
    assert got == [[2], [6]]


async def test_sglang_style_fps_options_are_honoured(engine: SGLangEngine, processor: Any) -> None:
    """Callers of SGLang's own API may name fps / num_frames instead of frames."""
    from sglang.srt.managers.io_struct import GenerateReqInput
    from sglang.srt.utils.common import VideoData

    prompt = processor.tokenizer("<video> what happens?", add_special_tokens=False).input_ids

    def request(**kwargs: Any) -> Any:
        video = VideoData(url=VIDEO, preprocess_kwargs=kwargs)
        obj = GenerateReqInput(input_ids=prompt, video_data=[video], sampling_params={})
        obj.normalize_batch_and_arguments()
        return obj

    for kwargs, frames in (({"fps": 1.0}, 4), ({"num_frames": 3}, 3), ({}, 8)):
        out = await sglang_expands(processor, request(**kwargs), engine)
        assert out.mm_items[0].model_specific_data["frames_per_video"] == [frames], kwargs
    # Above the cap: a ValueError, which SGLang answers with a 400.
    with pytest.raises(ValueError, match="limit of 128 frames"):
        await sglang_expands(processor, request(num_frames=300), engine)


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
    engine: SGLangEngine,
) -> None:
    """A third party's processor that only implements ``process``: a 4xx naming why."""
    from omni_sglang_testplug import CountMedia

    sg = sglang_state(engine)
    sg.modality = CountMedia(sg.tokenizer)
    with pytest.raises(UnsupportedFieldError, match="CountMedia cannot prepare media"):
        await prepare_chat(chat_request(messages=user(image_part())), sg)


async def test_placeholder_text_in_the_prompt_is_refused(states: States) -> None:
    _, sg = states
    with pytest.raises(InvalidRequestError, match="2 media placeholders for 1 media items"):
        await prepare_chat(chat_request(messages=user(image_part(), text="also <image>")), sg)


@pytest.mark.parametrize(
    ("kind", "part", "rate"),
    [("image", image_part, 0.5), ("video", video_part, 0.9)],  # 0.9: not the server's
)
async def test_a_generate_counts_the_prompt_as_the_cpu_path(
    states: States, kind: str, part: Any, rate: float
) -> None:
    """The whole runtime: SGLang's processor, scheduler and the model's own encoders
    answer with the prompt length and media token count our CPU path has for the same
    request. For the video, the scheduler must prune at the request's 0.9: embeddings
    pruned at the server's 0.5 would outnumber the placeholders."""
    cpu, sg = states
    fields = {"messages": user(part()), "max_tokens": 2}
    fields["mm_processor_kwargs"] = {"video_pruning_rate": rate}
    ours = (await prepare_chat(chat_request(**fields), cpu)).request
    theirs = (await prepare_chat(chat_request(**fields), sg)).request
    on_sglang = [out async for out in sg.engine.generate(theirs)]
    on_cpu = [out async for out in cpu.engine.generate(ours)]
    assert on_sglang[-1].finished and on_cpu[-1].finished
    media = count(list(ours.input_ids or []), sg.tokenizer, "<image>")  # frames' too
    assert on_sglang[-1].prompt_tokens == len(ours.input_ids or []) == on_cpu[-1].prompt_tokens
    assert on_sglang[-1].media_tokens == on_cpu[-1].media_tokens == {kind: media}
