"""The registry finds plugins through entry points, checks them, and explains failures."""

from __future__ import annotations

import pytest

from omni_sglang.errors import PluginError
from omni_sglang.plugin_api import (
    EnginePlugin,
    LogitProcessorPlugin,
    ModalityProcessorPlugin,
    ReasoningParserPlugin,
    ToolParserPlugin,
)
from omni_sglang.plugins import KINDS, PluginRegistry

# The test-only distribution under tests/plugin_pkg declares one plugin of each kind.
THIRD_PARTY = {
    "engines": ("echo", EnginePlugin),
    "reasoning_parsers": ("brackets", ReasoningParserPlugin),
    "tool_parsers": ("call_lines", ToolParserPlugin),
    "logit_processors": ("force_tokens", LogitProcessorPlugin),
    "modality_processors": ("count_media", ModalityProcessorPlugin),
}


def test_every_kind_has_a_test_plugin() -> None:
    assert set(THIRD_PARTY) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(THIRD_PARTY))
def test_third_party_plugin_found_by_entry_point(kind: str) -> None:
    name, interface = THIRD_PARTY[kind]
    registry = PluginRegistry()
    assert name in registry.names(kind)
    plugin = registry.get(kind, name)
    assert isinstance(plugin, interface)
    assert registry.get(kind, name) is plugin  # loaded once
    info = [i for i in registry.describe() if i.kind == kind and i.name == name]
    assert info and info[0].source == "omni-sglang-testplug==0.0.1"


def test_builtin_engines_come_through_the_same_entry_points() -> None:
    registry = PluginRegistry()
    sources = {i.name: i.source for i in registry.describe() if i.kind == "engines"}
    assert sources["cpu"].startswith("omni-sglang==")
    assert sources["sglang"].startswith("omni-sglang==")


def test_unknown_name_lists_installed_choices() -> None:
    with pytest.raises(PluginError) as err:
        PluginRegistry().get("engines", "nope")
    message = str(err.value)
    assert "'nope'" in message and "cpu" in message and "echo" in message
    assert "omni_sglang.engines" in message


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(PluginError, match="kinds: engines"):
        PluginRegistry().get("gadgets", "x")


def test_allow_list_hides_other_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_SGLANG_PLUGINS", "cpu,reasoning_parsers:brackets")
    registry = PluginRegistry()
    assert registry.names("engines") == ["cpu"]
    assert registry.names("reasoning_parsers") == ["brackets"]
    with pytest.raises(PluginError):
        registry.get("engines", "echo")


def test_in_memory_registration_and_removal() -> None:
    registry = PluginRegistry()

    class Mine(ReasoningParserPlugin):
        def create(self, *, prompt: str):  # type: ignore[no-untyped-def]
            raise AssertionError("not called")

    unregister = registry.register("reasoning_parsers", "mine", Mine())
    assert "mine" in registry.names("reasoning_parsers")
    assert isinstance(registry.get("reasoning_parsers", "mine"), Mine)
    with pytest.raises(PluginError, match="already registered"):
        registry.register("reasoning_parsers", "mine", Mine())
    unregister()
    assert "mine" not in registry.names("reasoning_parsers")


def test_wrong_interface_is_refused() -> None:
    registry = PluginRegistry()
    with pytest.raises(PluginError, match=r"not a omni_sglang\.plugin_api\.EnginePlugin"):
        registry.register("engines", "bad", object())

    class NotAnEngine(ToolParserPlugin):
        def create(self, tools):  # type: ignore[no-untyped-def]
            return None

    with pytest.raises(PluginError, match="does not subclass"):
        registry.register("engines", "bad", NotAnEngine)


def test_api_version_mismatch_is_refused() -> None:
    class Future(EnginePlugin):
        api_version = 99

        def build(self, config):  # type: ignore[no-untyped-def]
            return None

    with pytest.raises(PluginError, match="plugin API v99"):
        PluginRegistry().register("engines", "future", Future())
