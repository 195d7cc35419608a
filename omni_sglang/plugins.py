"""The plugin registry: one entry-point group per kind, looked up lazily by name.

Our own plugins (the engines in this package, the Nemotron plugins in their own
distribution) are found through the very same entry points as a third party's.
``OMNI_SGLANG_PLUGINS`` (comma-separated ``name`` or ``kind:name``) is an allow-list:
when set, only those entry points load. Tests register plugins in memory with
``register()``, which returns the function that removes them again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from omni_sglang.errors import PluginError
from omni_sglang.plugin_api import (
    PLUGIN_API_VERSION,
    EnginePlugin,
    LogitProcessorPlugin,
    ModalityProcessorPlugin,
    Plugin,
    ReasoningParserPlugin,
    ToolParserPlugin,
)

logger = logging.getLogger(__name__)

ALLOW_LIST_ENV = "OMNI_SGLANG_PLUGINS"


@dataclass(frozen=True)
class PluginKind:
    name: str
    group: str
    interface: type[Plugin]


KINDS: dict[str, PluginKind] = {
    kind.name: kind
    for kind in (
        PluginKind("engines", "omni_sglang.engines", EnginePlugin),
        PluginKind("reasoning_parsers", "omni_sglang.reasoning_parsers", ReasoningParserPlugin),
        PluginKind("tool_parsers", "omni_sglang.tool_parsers", ToolParserPlugin),
        PluginKind("logit_processors", "omni_sglang.logit_processors", LogitProcessorPlugin),
        PluginKind(
            "modality_processors", "omni_sglang.modality_processors", ModalityProcessorPlugin
        ),
    )
}


@dataclass(frozen=True)
class PluginInfo:
    kind: str
    name: str
    source: str  # "distribution==version" or "in-memory"
    target: str  # "module:attr" or the object's repr


def _kind(kind: str) -> PluginKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}") from None


def _allow_list() -> set[str] | None:
    raw = os.environ.get(ALLOW_LIST_ENV, "").strip()
    return {item.strip() for item in raw.split(",") if item.strip()} if raw else None


class PluginRegistry:
    def __init__(self) -> None:
        self._memory: dict[tuple[str, str], Any] = {}
        self._loaded: dict[tuple[str, str], Plugin] = {}

    # -- discovery ------------------------------------------------------------------------

    def _entry_points(self, kind: str) -> dict[str, list[EntryPoint]]:
        allow = _allow_list()
        found: dict[str, list[EntryPoint]] = {}
        for ep in entry_points(group=_kind(kind).group):
            if allow is not None and ep.name not in allow and f"{kind}:{ep.name}" not in allow:
                continue
            found.setdefault(ep.name, []).append(ep)
        return found

    def names(self, kind: str) -> list[str]:
        names = set(self._entry_points(kind)) | {n for k, n in self._memory if k == kind}
        return sorted(names)

    def describe(self) -> list[PluginInfo]:
        infos = []
        for kind in KINDS:
            for name, eps in self._entry_points(kind).items():
                for ep in eps:
                    dist = ep.dist
                    source = f"{dist.name}=={dist.version}" if dist else "unknown distribution"
                    infos.append(PluginInfo(kind, name, source, ep.value))
            for (k, name), obj in self._memory.items():
                if k == kind:
                    infos.append(PluginInfo(kind, name, "in-memory", repr(obj)))
        return sorted(infos, key=lambda i: (i.kind, i.name))

    # -- lookup ---------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> Plugin:
        key = (kind, name)
        if key in self._memory:
            return self._check(kind, name, self._memory[key], "in-memory")
        if key in self._loaded:
            return self._loaded[key]
        eps = self._entry_points(kind).get(name)
        if not eps:
            choices = ", ".join(self.names(kind)) or "none installed"
            raise PluginError(
                f"no {kind} plugin named {name!r}; installed: {choices}. "
                f"A plugin is a package declaring an entry point in the group "
                f"{_kind(kind).group!r}."
            )
        if len(eps) > 1:
            owners = ", ".join(f"{ep.value} ({ep.dist.name if ep.dist else '?'})" for ep in eps)
            raise PluginError(
                f"{kind} plugin name {name!r} is declared more than once: {owners}. "
                f"Uninstall one, or pick one with {ALLOW_LIST_ENV}."
            )
        ep = eps[0]
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not look like a missing one
            raise PluginError(f"{kind} plugin {name!r} ({ep.value}) failed to load: {exc}") from exc
        plugin = self._check(kind, name, obj, ep.value)
        self._loaded[key] = plugin
        return plugin

    def _check(self, kind: str, name: str, obj: Any, origin: str) -> Plugin:
        interface = _kind(kind).interface
        if isinstance(obj, type):
            if not issubclass(obj, interface):
                raise PluginError(
                    f"{kind} plugin {name!r} ({origin}) is {obj.__qualname__}, "
                    f"which does not subclass {interface.__module__}.{interface.__qualname__}"
                )
            obj = obj()
        if not isinstance(obj, interface):
            raise PluginError(
                f"{kind} plugin {name!r} ({origin}) is a {type(obj).__qualname__}, "
                f"not a {interface.__module__}.{interface.__qualname__}"
            )
        if obj.api_version != PLUGIN_API_VERSION:
            raise PluginError(
                f"{kind} plugin {name!r} ({origin}) was written for plugin API "
                f"v{obj.api_version}; this omni-sglang speaks v{PLUGIN_API_VERSION}"
            )
        return obj

    # -- in-memory registration (tests, embedding) ----------------------------------------

    def register(self, kind: str, name: str, plugin: Any) -> Callable[[], None]:
        _kind(kind)
        key = (kind, name)
        if key in self._memory:
            raise PluginError(f"{kind} plugin {name!r} is already registered in memory")
        self._check(kind, name, plugin, "in-memory")
        self._memory[key] = plugin

        def unregister() -> None:
            self._memory.pop(key, None)

        return unregister


#: The process-wide registry.
registry = PluginRegistry()
