"""``python -m omni_sglang.launch``: CLI -> config -> engine -> app -> uvicorn.

Everything that can be checked before the socket opens is checked here, and reported as
one ``error:`` line with what to do instead of a traceback: unknown plugins, a missing
model path, a port in use, the GPU engine without a GPU, bad flags for SGLang.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omni_sglang.config import ServerConfig, load_config
from omni_sglang.config_flags import add_config_flags, config_values
from omni_sglang.errors import ConfigError
from omni_sglang.plugins import registry

logger = logging.getLogger("omni_sglang")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="omni-sglang",
        # A prefix of a flag would be read as that flag: a typo becomes another option.
        allow_abbrev=False,
        description="Serve Nemotron 3 Nano Omni with the NIM API. Arguments after '--' "
        "go to SGLang's server args unchanged.",
    )
    p.add_argument("--config", help="TOML serving profile (see configs/)")
    add_config_flags(p)
    p.add_argument("--list-plugins", action="store_true", help="list installed plugins and exit")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve the config, print the engine's SGLang server arguments and the plugin "
        "set as JSON, and exit (needs no GPU)",
    )
    return p


def parse_cli(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    argv = list(argv)
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(_unrecognized(parser, unknown))
    return args, passthrough


def _unrecognized(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """argparse's message, naming the closest real flags for each unknown one: those it
    abbreviates, else the nearest spelling."""
    known = [flag for action in parser._actions for flag in action.option_strings]
    parts = []
    for arg in unknown:
        flag = arg.split("=", 1)[0]
        if not flag.startswith("--"):
            parts.append(arg)
            continue
        close = [k for k in known if k.startswith(flag)][:3]
        close = close or difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
        parts.append(f"{arg} (did you mean {' or '.join(close)}?)" if close else arg)
    return "unrecognized arguments: " + " ".join(parts)


def config_from_cli(args: argparse.Namespace, passthrough: list[str]) -> ServerConfig:
    cli = config_values(args)
    config = load_config(cli, config_file=args.config)
    if passthrough:  # after the profile's own SGLang args, so the command line wins
        config = config.model_copy(update={"sglang_args": [*config.sglang_args, *passthrough]})
    if config.engine is None:
        config = config.model_copy(update={"engine": default_engine(config)})
    return config


def default_engine(config: ServerConfig) -> str:
    """``sglang`` for a checkpoint on a GPU, else ``cpu``: without a GPU SGLang serves too
    (``--engine sglang``, media included, on ``tiny-omni``), but it starts in ~40 s
    instead of 0.3 s (README, "Engines")."""
    if config.model_path is None:
        return "cpu"
    import torch

    return "sglang" if torch.cuda.is_available() else "cpu"


def free_local_port() -> int:
    """A port on 127.0.0.1 nothing listens on now (for servers this package starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def check_model_path(path: str | None) -> None:
    """A local checkpoint folder must be there and readable before an engine tries it
    (SGLang would take a missing folder for a hub id and fail ~40 s later with a hub
    error). A name that is no local path (``org/model``) is left to the engine."""
    if path is None:
        return
    local = Path(path).expanduser()
    if not local.exists():
        if path.startswith(("/", ".", "~")):
            raise ConfigError(
                f"the model path {path} does not exist; --model-path takes a checkpoint "
                "folder (config.json, tokenizer, weights), or omit it to serve a built-in model"
            )
        return
    config = local / "config.json"
    if not local.is_dir() or not config.is_file():
        raise ConfigError(
            f"the model path {path} is not a checkpoint folder (no config.json in it); "
            "--model-path takes the folder a Hugging Face checkpoint was saved to"
        )
    try:
        json.loads(config.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"the model's {config} cannot be read ({exc}); check the folder's permissions "
            "and that the checkpoint was copied whole"
        ) from None


def list_plugins() -> str:
    rows = [("KIND", "NAME", "FROM", "TARGET")]
    rows += [(i.kind, i.name, i.source, i.target) for i in registry.describe()]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(widths[c]) if c < 3 else cell for c, cell in enumerate(row))
        for row in rows
    )


def dry_run(config: ServerConfig) -> str:
    """What this config would start, checked as far as possible without a GPU: plugin
    names through the registry, SGLang's arguments through SGLang's own parser."""
    from omni_sglang.state import ServerPlugins

    ServerPlugins.from_config(config, registry)  # an unknown plugin name fails here
    report: dict[str, Any] = {
        "engine": config.engine,
        "plugins": {
            "reasoning_parser": config.reasoning_parser,
            "tool_parser": config.tool_parser,
            "modality_processor": config.modality_processor,
            "thinking_budget_processor": config.thinking_budget_processor,
        },
        "config": config.model_dump(exclude={"api_key"}),
    }
    if config.engine == "sglang":
        from omni_sglang.engines.sglang_args import describe

        report.update(describe(config))
    return json.dumps(report, indent=2, default=str)


def run(config: ServerConfig) -> int:
    import uvicorn

    from omni_sglang.api.app import create_app
    from omni_sglang.api.lifecycle import DrainingServer
    from omni_sglang.state import ServerPlugins, ServerState

    assert config.engine is not None
    plugins = ServerPlugins.from_config(config, registry)
    engine_plugin = registry.get("engines", config.engine)
    check_port_free(config.host, config.port)
    check_model_path(config.model_path)
    engine = engine_plugin.build(config)  # type: ignore[attr-defined]
    state = ServerState(config=config, engine=engine, plugins=plugins)
    failure: list[BaseException] = []
    server: uvicorn.Server | None = None

    def on_fatal(exc: BaseException) -> None:
        failure.append(exc)
        if server is not None:
            server.should_exit = True

    app = create_app(state, on_fatal=on_fatal)
    server = DrainingServer(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            timeout_graceful_shutdown=int(config.drain_timeout_seconds),
        ),
        state,
    )
    server.run()
    if failure:
        print(f"error: {failure[0]}", file=sys.stderr)
        # 2: it did not start (restarting as is will not help); 1: it died serving.
        return 2 if isinstance(failure[0], ConfigError) else 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["selftest"]:  # `omni-sglang selftest ...`: its own command line
        from omni_sglang.selftest.cli import main as selftest

        return selftest(argv[1:])
    args, passthrough = parse_cli(argv)
    try:
        if args.list_plugins:
            print(list_plugins())
            return 0
        config = config_from_cli(args, passthrough)
        if args.dry_run:
            print(dry_run(config))
            return 0
        logging.basicConfig(
            level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        return run(config)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
