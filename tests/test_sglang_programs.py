"""SGLang's own frontend test programs (``sglang/test/test_programs.py``) against our
``/generate``, through ``sgl.RuntimeEndpoint`` on the tiny random model (CPU engine).

Only the programs whose assertions hold for any model are here; the ones that need a
knowledgeable model (capitals, 24 hours, a calculator expression, ...), an image model or
an OpenAI backend are listed in the README."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.conftest import Server

pytestmark = [pytest.mark.sglang, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def programs(engine_server: Server) -> Iterator[ModuleType]:
    """SGLang's test programs with our server as the default backend."""
    import sglang as sgl
    from sglang.lang.global_config import global_config
    from sglang.test import test_programs

    previous = global_config.default_backend
    sgl.set_default_backend(sgl.RuntimeEndpoint(engine_server.url))
    yield test_programs
    global_config.default_backend = previous


def test_select(programs: ModuleType) -> None:
    programs.test_select(check_answer=False)


def test_stream(programs: ModuleType) -> None:
    programs.test_stream()


def test_dtype_gen(programs: ModuleType) -> None:
    programs.test_dtype_gen()


def test_parallel_decoding(programs: ModuleType) -> None:
    programs.test_parallel_decoding()


def test_parallel_encoding(programs: ModuleType) -> None:
    programs.test_parallel_encoding(check_answer=False)


def test_mt_bench(programs: ModuleType) -> None:
    programs.test_mt_bench()


def test_expert_answer(programs: ModuleType) -> None:
    programs.test_expert_answer(check_answer=False)


def test_gen_min_new_tokens(programs: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    # The program reads the model path through ``sgl.Runtime``'s ``.endpoint``; a bare
    # RuntimeEndpoint (what SGLang's own CI sets too) is its own endpoint.
    from sglang.lang.global_config import global_config

    backend = global_config.default_backend
    monkeypatch.setattr(backend, "endpoint", backend, raising=False)
    programs.test_gen_min_new_tokens()
