"""The SGLang release this plugin patches, checked before it activates."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from omni_sglang_cpu import SGLANG_VERSION


class SGLangVersionMismatch(RuntimeError):
    pass


def installed_sglang_version() -> str | None:
    try:
        return version("sglang")
    except PackageNotFoundError:
        return None


def check_sglang_version() -> None:
    """The Mamba op replacements bind to SGLang's module globals and call signatures,
    which change between releases; on another release they could compute wrong results
    silently, so this refuses instead."""
    found = installed_sglang_version()
    if found != SGLANG_VERSION:
        raise SGLangVersionMismatch(
            f"omni-sglang-cpu was written for sglang {SGLANG_VERSION} but sglang {found} is "
            f"installed: install `sglang=={SGLANG_VERSION}`, or uninstall omni-sglang-cpu to "
            "run SGLang without it (it then needs a GPU)"
        )
