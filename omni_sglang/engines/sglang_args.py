"""SGLang server arguments from our config, through SGLang's own parser.

Our config says what the server needs (model, context length, EVS pruning, which
reasoning and tool formats the model speaks); this module turns that into the command
line ``sglang serve`` would take and hands it to ``prepare_server_args``, so an unknown,
removed or mistyped flag fails at start-up with SGLang's own message. The user's
``sglang_args`` come last and win, except where two settings would silently disagree.

SGLang is imported inside functions only: it costs 10-18 s and about 1 GB per process.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from omni_sglang.errors import ConfigError

if TYPE_CHECKING:
    from omni_sglang.config import ServerConfig

#: SGLang's built-in parser for each of our parser plugins whose format SGLang knows too.
#: We parse the output ourselves; SGLang's scheduler still needs its parser to find the
#: end of the reasoning (grammar-constrained tool calls start after it) and the tool-call
#: format. A plugin missing here simply leaves SGLang's flag unset.
SGLANG_REASONING_PARSERS = {"nemotron_v3": "nemotron_3"}
SGLANG_TOOL_CALL_PARSERS = {"qwen3_coder": "qwen3_coder"}

JSON_OVERRIDE_FLAG = "--json-model-override-args"
CONTEXT_LENGTH_FLAG = "--context-length"
SGLANG_PLUGIN_GROUP = "sglang.srt.plugins"


def _take_flag(argv: list[str], flag: str) -> tuple[list[str], list[str]]:
    """``argv`` without ``flag`` (both ``--f v`` and ``--f=v``), and the values it had."""
    rest: list[str] = []
    values: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == flag:
            if i + 1 >= len(argv):
                raise ConfigError(f"sglang_args: {flag} needs a value")
            values.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith(flag + "="):
            values.append(arg[len(flag) + 1 :])
        else:
            rest.append(arg)
        i += 1
    return rest, values


def _model_overrides(config: ServerConfig, given: list[str]) -> dict[str, Any]:
    """EVS's pruning rate merged with the user's own overrides (theirs win: they named
    the key on purpose). SGLang keeps only the last ``--json-model-override-args``, so
    passing ours and theirs as two flags would drop one of them."""
    overrides: dict[str, Any] = {"video_pruning_rate": config.video_pruning_rate}
    for raw in given:
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"sglang_args: {JSON_OVERRIDE_FLAG} is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ConfigError(f"sglang_args: {JSON_OVERRIDE_FLAG} must be a JSON object")
        overrides.update(parsed)
    return overrides


def _check_context_length(config: ServerConfig, user_args: list[str]) -> None:
    """max_model_len is what /v1/models reports; a different --context-length in
    sglang_args would make the server advertise one limit and enforce another."""
    if config.max_model_len is None:
        return
    _, values = _take_flag(user_args, CONTEXT_LENGTH_FLAG)
    for value in values:
        if value != str(config.max_model_len):
            raise ConfigError(
                f"max_model_len is {config.max_model_len} but sglang_args sets "
                f"{CONTEXT_LENGTH_FLAG} {value}; set the context length once (max_model_len)"
            )


def server_args_argv(config: ServerConfig, device: str | None = None) -> list[str]:
    """The SGLang command line our config stands for (user's ``sglang_args`` last).

    ``device`` other than ``cuda`` (``cpu``: SGLang through a platform plugin) becomes
    ``--device``; without a model path, the built-in model's folder is served."""
    user_args, given_overrides = _take_flag(list(config.sglang_args), JSON_OVERRIDE_FLAG)
    _check_context_length(config, user_args)
    # Always on: our thinking-budget processor runs in SGLang's sampler. Whether clients
    # may send their own processors is our config's separate switch, checked per request.
    argv = ["--model-path", config.resolved_model_path(), "--enable-custom-logit-processor"]
    # Compact JSON for json_schema, as the cpu engine compiles it: with free whitespace a
    # weak model can spend all of max_tokens on whitespace inside the object.
    argv.append("--constrained-json-disable-any-whitespace")
    if device is not None and device != "cuda":
        argv += ["--device", device]
    if config.served_model_name:
        argv += ["--served-model-name", config.served_model_name[0]]
    if config.max_model_len:
        argv += [CONTEXT_LENGTH_FLAG, str(config.max_model_len)]
    reasoning = SGLANG_REASONING_PARSERS.get(config.reasoning_parser or "")
    if reasoning:
        argv += ["--reasoning-parser", reasoning]
    tools = SGLANG_TOOL_CALL_PARSERS.get(config.tool_parser or "")
    if tools:
        argv += ["--tool-call-parser", tools]
    overrides = _model_overrides(config, given_overrides)
    argv += [JSON_OVERRIDE_FLAG, json.dumps(overrides, sort_keys=True)]
    argv += ["--log-level", config.log_level]
    return argv + user_args


def _load_sglang_plugins() -> None:
    """SGLang's launchers load the ``sglang.srt.plugins`` entry points before they parse
    the command line, so plugin-registered parser names and flags are valid choices."""
    from sglang.srt.plugins import load_plugins

    load_plugins()


@contextlib.contextmanager
def _keep_root_logging() -> Any:
    """``prepare_server_args`` reconfigures root logging (``basicConfig(force=True)``) as
    its own CLI wants; our launcher already configured it and keeps its format."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def parse_server_args(argv: list[str]) -> Any:
    """SGLang's parser on ``argv``; its argparse error becomes a one-line ConfigError."""
    from sglang.srt.server_args import prepare_server_args

    _load_sglang_plugins()
    stderr = io.StringIO()
    try:
        with _keep_root_logging(), contextlib.redirect_stderr(stderr):
            return prepare_server_args(argv)
    except SystemExit as exc:
        detail = stderr.getvalue().strip().splitlines()
        raise ConfigError(
            "SGLang rejected its server arguments: " + (detail[-1] if detail else str(exc))
        ) from None


def build_server_args(config: ServerConfig, device: str | None = None) -> Any:
    """Parsed, not yet resolved: ``sglang.Engine`` resolves them against the checkpoint's
    config.json and the device when it starts."""
    return parse_server_args(server_args_argv(config, device))


def sglang_plugin_names() -> list[str]:
    """The ``sglang.srt.plugins`` entry points SGLang will run, after the same
    ``SGLANG_PLUGINS`` allow-list its ``load_plugins`` applies."""
    names = sorted({ep.name for ep in entry_points(group=SGLANG_PLUGIN_GROUP)})
    allowed = {n.strip() for n in os.environ.get("SGLANG_PLUGINS", "").split(",") if n.strip()}
    return [n for n in names if not allowed or n in allowed]


def changed_fields(args: Any, baseline: Any) -> dict[str, Any]:
    """Fields of a parsed ServerArgs that differ from ``baseline`` (another ServerArgs)."""
    import msgspec

    mine, base = msgspec.structs.asdict(args), msgspec.structs.asdict(baseline)
    return {name: value for name, value in mine.items() if base.get(name) != value}


def describe(config: ServerConfig) -> dict[str, Any]:
    """What the sglang engine would start with, for ``--dry-run``: the command line, the
    values SGLang's parser made of it (only those differing from its defaults), and the
    SGLang-side plugins every SGLang process will load, on this machine's device."""
    from omni_sglang.engines.sglang_platform import sglang_device

    try:
        device: str | None = sglang_device()
    except ConfigError:  # neither a GPU nor a platform plugin here: show the GPU's args
        device = None
    argv = server_args_argv(config, device)
    args = parse_server_args(argv)
    baseline = parse_server_args(["--model-path", argv[1]])
    return {
        "sglang_argv": argv,
        "sglang_server_args": {"model_path": args.model_path, **changed_fields(args, baseline)},
        "sglang_plugins": sglang_plugin_names(),
    }
