"""Command-line flags generated from :class:`ServerConfig`'s fields: one flag per field,
named after it (``max_n`` -> ``--max-n``), its help the field's description and its
default shown once, from the field itself. A flag's value is handed to ``load_config``
as the environment's would be (pydantic converts and validates it), so the command line,
``OMNI_SGLANG_<FIELD>`` and a TOML profile accept the same spellings.

What is not one field's plain value is said here, in three tables: shorter names kept from
earlier releases, fields whose flag repeats, and the field whose value is a command line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import types
import typing
from typing import Any, Literal

from pydantic.fields import FieldInfo

from omni_sglang.config import ServerConfig

#: Earlier names of a few flags, still accepted beside the generated ones.
ALIASES: dict[str, tuple[str, ...]] = {
    "request_timeout_seconds": ("--request-timeout",),
    "drain_timeout_seconds": ("--drain-timeout",),
    "drain_notice_seconds": ("--drain-notice",),
}
#: List fields whose flag may repeat (each value also splits at commas).
REPEATABLE = ("served_model_name", "allowed_media_domains", "cors_allow_origins")
#: sglang_args: a shell-quoted string of SGLang flags (usually: everything after "--").
COMMAND_LINE = "sglang_args"


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _default_text(info: FieldInfo) -> str | None:
    default = info.get_default(call_default_factory=True)
    if default is None or default == [] or default == {}:
        return None
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, list):
        return ",".join(str(v) for v in default)
    if isinstance(default, dict):
        return json.dumps(default)
    return str(default)


def _help(info: FieldInfo) -> str:
    text = info.description or ""
    default = _default_text(info)
    return f"{text} (default: {default})" if default is not None else text


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ServerConfig field (``dest`` is the field's name; unset: None)."""
    for name, info in ServerConfig.model_fields.items():
        flags = [flag_name(name), *ALIASES.get(name, ())]
        kind = _without_none(info.annotation)
        options: dict[str, Any] = {"dest": name, "default": None, "help": _help(info)}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is Literal:
            options["choices"] = list(typing.get_args(kind))
        elif kind in (int, float):
            options["type"] = kind
        elif name in REPEATABLE:
            options["action"] = "append"
        parser.add_argument(*flags, **options)


def config_values(args: argparse.Namespace) -> dict[str, Any]:
    """The fields the command line set, in the form ``load_config`` takes."""
    values: dict[str, Any] = {}
    for name in ServerConfig.model_fields:
        value = getattr(args, name, None)
        if value is None:
            continue
        if name in REPEATABLE:
            value = ",".join(value)
        elif name == COMMAND_LINE:
            value = shlex.split(value)
        values[name] = value
    return values
