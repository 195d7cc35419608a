"""Shared fixtures: the tiny model, and real servers started once per test session."""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from omni_sglang.launch import free_local_port
from omni_sglang.tiny.model import ensure_tiny_model

ROOT = Path(__file__).resolve().parent.parent
#: One model cache for the whole run (the build itself is tested in test_tiny_model).
CACHE = Path(os.environ.get("OMNI_SGLANG_TEST_CACHE", ROOT / ".cache" / "test-models"))
TINY = "tiny-nemotron-h"


#: Seconds this process may take to exit once the session is over.
EXIT_WATCHDOG_SECONDS = 300


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No zmq socket may outlive the in-process SGLang engines: one left open with a
    message queued blocks its context's termination at garbage collection, and this
    process never exits (a CI run sat there until its limit). Open ones fail the run,
    closed so that it still ends; and should exit hang anyway, the stacks are printed
    and the process exits."""
    faulthandler.dump_traceback_later(EXIT_WATCHDOG_SECONDS, exit=True)
    zmq = sys.modules.get("zmq")
    if zmq is None:
        return
    left_open = [o for o in gc.get_objects() if isinstance(o, zmq.Socket) and not o.closed]
    for sock in left_open:
        sock.close(linger=0)
    if left_open:
        kinds = ", ".join(sorted(str(zmq.SocketType(s.type).name) for s in left_open))
        print(f"\nerror: {len(left_open)} zmq socket(s) left open by the tests: {kinds}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


free_port = free_local_port


class Server:
    """``python -m omni_sglang.launch`` in a subprocess, as a user starts it."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "OMNI_SGLANG_TINY_MODEL_DIR": str(CACHE), **(env or {})}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "omni_sglang.launch",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )

    def wait_ready(self, timeout: float = 420) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/v1/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"server not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    return ensure_tiny_model(CACHE)


@pytest.fixture(scope="session")
def tok(tiny_model_path: Path) -> Any:
    """The tiny model's tokenizer (tests spell forced answers with it)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_path))


def _servers(logs: Path) -> Iterator:
    started: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None, ready: bool = True) -> Server:
        server = Server(*args, env=env, log=logs / f"server-{len(started)}.log")
        started.append(server)
        return server.wait_ready() if ready else server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Iterator:
    """Starts servers that live for the whole session."""
    yield from _servers(tmp_path_factory.mktemp("server-logs"))


@pytest.fixture(scope="module")
def module_server_factory(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path
) -> Iterator:
    """Starts servers stopped when the test module ends: SGLang servers hold ~3 GB each
    (three processes), too much to keep one per module for the whole session."""
    yield from _servers(tmp_path_factory.mktemp("module-server-logs"))


@pytest.fixture(scope="session")
def tiny_server(server_factory) -> Server:  # type: ignore[no-untyped-def]
    """The default server (tiny model, CPU engine) with client logits processors enabled,
    so tests can force known outputs through the real serving path."""
    return server_factory("--enable-custom-logit-processor")


#: The engines every HTTP test runs on: our CPU engine and SGLang's own runtime (on this
#: CPU through the omni-sglang-cpu platform plugin).
ENGINES = ("cpu", "sglang")
#: The session fixture of each engine's default server (``engine_server``).
ENGINE_SERVERS = {"cpu": "tiny_server", "sglang": "sglang_server"}
#: SGLang's KV pool for test servers: enough for the tests' longest prompts, small, since
#: several test servers share this machine's RAM with the suite.
SGLANG_TEST_ARGS = ("--", "--max-total-tokens", "131072")


def engine_args(engine: str, *args: str) -> tuple[str, ...]:
    """Launcher arguments for a test server on ``engine`` (SGLang's own args last). Each
    engine serves its default built-in model: ``tiny`` on the CPU engine, ``tiny-omni``
    (Nemotron Omni's own model code around ``tiny``'s language model, under ``tiny``'s
    names) on SGLang, so media tests send the same requests to both."""
    return ("--engine", engine, *args, *(SGLANG_TEST_ARGS if engine == "sglang" else ()))


@pytest.fixture(scope="module", params=ENGINES, ids=[f"{e}_engine" for e in ENGINES])
def media_engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn, for a module's servers (``module_server_factory``)."""
    return str(request.param)


@pytest.fixture(scope="session", params=ENGINES, ids=[f"{e}_engine" for e in ENGINES])
def engine_server(request: pytest.FixtureRequest) -> Server:
    """``tiny_server``'s configuration on each engine: tests that take it run twice,
    with the same assertions (pytest groups them by engine, so each server starts once)."""
    return request.getfixturevalue(ENGINE_SERVERS[request.param])  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def sglang_server(server_factory) -> Server:  # type: ignore[no-untyped-def]
    """``tiny_server`` on SGLang's own runtime (no GPU: the CPU platform plugin)."""
    return server_factory(*engine_args("sglang", "--enable-custom-logit-processor"))  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def sglang_llama_server(server_factory) -> Server:  # type: ignore[no-untyped-def]
    """The tiny Llama-class model on SGLang: attention only, so its radix cache hits."""
    return server_factory(*engine_args("sglang", "--model", "tiny-llama"))  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def force_tokens_processor() -> str:
    """The serialized test-only ``ForceTokens`` processor (imports SGLang: once)."""
    from omni_sglang.plugins import registry

    plugin = registry.get("logit_processors", "force_tokens")
    return str(plugin.processor_class().to_str())  # type: ignore[attr-defined]


@asynccontextmanager
async def adapter_state(model_path: Path, **config: Any) -> AsyncIterator[Any]:
    """A ServerState over an in-process CPU engine: the real adapter, no HTTP."""
    from omni_sglang.config import load_config
    from omni_sglang.engines.cpu.engine import CpuEngine
    from omni_sglang.plugins import registry
    from omni_sglang.state import ServerPlugins, ServerState

    engine = CpuEngine(model_path)
    await engine.start()
    cfg = load_config(config, environ={})
    state = ServerState(cfg, engine, ServerPlugins.from_config(cfg, registry))
    state.prepare_plugins()
    try:
        yield state
    finally:
        await engine.shutdown()


def chat_request(**fields: Any) -> Any:
    from omni_sglang.protocol.openai import ChatCompletionRequest

    body = {"model": TINY, "messages": [{"role": "user", "content": "Hi"}]}
    return ChatCompletionRequest.model_validate({**body, **fields})


def new_children(before: set[int]) -> list[Any]:
    """This process's children not in ``before``, but multiprocessing's resource tracker:
    starting SGLang starts it, and it serves the whole process (killed, loky's clean-up
    at exit fails)."""
    import psutil

    started = [p for p in psutil.Process().children() if p.pid not in before]
    return [p for p in started if "resource_tracker" not in " ".join(p.cmdline())]


@contextmanager
def sglang_kills_only(backend: Any, children: list[Any]) -> Iterator[None]:
    """Around an in-process SGLang engine's shutdown in a test. SGLang's shutdown kills
    every child of this process (in our server: only its own); here the other test
    servers are children too, so only SGLang's ``children`` are handed to it. SGLang
    also registered its shutdown at exit, which would then kill every child: removed.
    On leaving, SGLang's processes must be gone."""
    import atexit

    import psutil
    import sglang.srt.entrypoints.engine as sglang_engine

    def kill_sglangs_own(pid: int, include_parent: bool = True, **kwargs: Any) -> None:
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()

    runtime = backend._engine
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sglang_engine, "kill_process_tree", kill_sglangs_own)
        yield
    atexit.unregister(runtime.shutdown)
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """Each phase's report on its test item (``rep_call``...), for fixtures that act on
    a failure (the browser test's screenshot)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
