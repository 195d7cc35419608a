"""``python -m omni_sglang.launch``: CLI -> config -> engine -> app -> uvicorn.

Everything that can be checked before the socket opens is checked here, and reported as
one ``error:`` line with what to do instead of a traceback: unknown plugins, a missing
model path, a port in use, the GPU engine without a GPU, bad flags for SGLang.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Sequence
from typing import Any

from omni_sglang.config import ServerConfig, load_config
from omni_sglang.errors import ConfigError
from omni_sglang.plugins import registry

logger = logging.getLogger("omni_sglang")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="omni-sglang",
        description="Serve Nemotron 3 Nano Omni with the NIM API. Arguments after '--' "
        "go to SGLang's server args unchanged.",
    )
    p.add_argument("--config", help="TOML serving profile (see configs/)")
    p.add_argument("--model-path", help="checkpoint folder; unset serves the tiny model")
    p.add_argument(
        "--served-model-name", action="append", help="name clients request (repeat for aliases)"
    )
    p.add_argument("--engine", help="engine plugin: sglang (GPU), cpu, or a third party's")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--api-key", help="require 'Authorization: Bearer <key>'")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error", "critical"])
    p.add_argument("--max-model-len", type=int, help="context length override")
    p.add_argument("--reasoning-parser", help="reasoning-parser plugin name ('' disables)")
    p.add_argument("--tool-parser", help="tool-parser plugin name ('' disables)")
    p.add_argument("--modality-processor", help="modality-processor plugin name ('' disables)")
    p.add_argument(
        "--thinking-budget-processor", help="thinking-budget logits-processor plugin name"
    )
    p.add_argument(
        "--thinking-grace-tokens", type=int, help="tokens past the budget to finish a line"
    )
    p.add_argument(
        "--reasoning-answer-reserve",
        type=int,
        help="reserve this many of max_tokens for the answer (default 0: off)",
    )
    p.add_argument(
        "--enable-custom-logit-processor",
        action="store_const",
        const=True,
        help="accept clients' serialized logits processors (they run client code: trusted "
        "clients only)",
    )
    p.add_argument("--no-warmup", dest="warmup", action="store_const", const=False)
    p.add_argument("--list-plugins", action="store_true", help="list installed plugins and exit")
    return p


def parse_cli(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    argv = list(argv)
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    return build_parser().parse_args(argv), passthrough


def config_from_cli(args: argparse.Namespace, passthrough: list[str]) -> ServerConfig:
    cli: dict[str, Any] = {
        key: getattr(args, key)
        for key in (
            "model_path",
            "served_model_name",
            "engine",
            "host",
            "port",
            "api_key",
            "log_level",
            "max_model_len",
            "reasoning_parser",
            "tool_parser",
            "modality_processor",
            "thinking_budget_processor",
            "enable_custom_logit_processor",
            "warmup",
            "thinking_grace_tokens",
            "reasoning_answer_reserve",
        )
    }
    if passthrough:
        cli["sglang_args"] = passthrough
    config = load_config(cli, config_file=args.config)
    if config.engine is None:
        config = config.model_copy(update={"engine": default_engine(config)})
    return config


def default_engine(config: ServerConfig) -> str:
    if config.model_path is None:
        return "cpu"
    import torch

    return "sglang" if torch.cuda.is_available() else "cpu"


def check_port_free(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is another server "
                f"running there? Pick another port with --port"
            ) from None


def list_plugins() -> str:
    rows = [("KIND", "NAME", "FROM", "TARGET")]
    rows += [(i.kind, i.name, i.source, i.target) for i in registry.describe()]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(widths[c]) if c < 3 else cell for c, cell in enumerate(row))
        for row in rows
    )


def run(config: ServerConfig) -> int:
    import uvicorn

    from omni_sglang.api.app import create_app
    from omni_sglang.state import ServerPlugins, ServerState

    assert config.engine is not None
    plugins = ServerPlugins.from_config(config, registry)
    engine_plugin = registry.get("engines", config.engine)
    check_port_free(config.host, config.port)
    engine = engine_plugin.build(config)  # type: ignore[attr-defined]
    state = ServerState(config=config, engine=engine, plugins=plugins)
    failure: list[BaseException] = []
    server: uvicorn.Server | None = None

    def on_fatal(exc: BaseException) -> None:
        failure.append(exc)
        if server is not None:
            server.should_exit = True

    app = create_app(state, on_fatal=on_fatal)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            timeout_graceful_shutdown=30,
        )
    )
    server.run()
    if failure:
        print(f"error: {failure[0]}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args, passthrough = parse_cli(sys.argv[1:] if argv is None else argv)
    try:
        if args.list_plugins:
            print(list_plugins())
            return 0
        config = config_from_cli(args, passthrough)
        logging.basicConfig(
            level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        return run(config)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
