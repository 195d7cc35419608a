"""The fields SGLang's ``GenerateReqInput`` takes, with their defaults, and the keys its
``SamplingParams`` takes, read from the installed SGLang's own source: the sets follow the
pinned version, not a hand copy.

Read, not imported: ``sglang.srt.managers.io_struct`` costs ~10 s to import and
``sglang.srt.sampling.sampling_params`` ~6 s, which a server on the cpu engine never needs
otherwise. tests/test_sglang_native.py checks both against the imported classes."""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from typing import Any

#: A default that is not a literal (none in 0.5.23): no value counts as neutral but null.
NOT_LITERAL = object()


def _default(value: ast.expr | None) -> Any:
    if value is None:
        return NOT_LITERAL  # a required field
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "field":
        for keyword in value.keywords:
            factory = getattr(keyword.value, "id", None)
            if keyword.arg == "default":
                return _default(keyword.value)
            if keyword.arg == "default_factory" and factory in ("list", "dict"):
                return [] if factory == "list" else {}
        return NOT_LITERAL
    try:
        return ast.literal_eval(value)
    except ValueError:
        return NOT_LITERAL


def _class_in(module: str, name: str) -> ast.ClassDef | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    return None


def _fields(node: ast.ClassDef | None) -> dict[str, Any]:
    """A dataclass's (or struct's) annotated fields -> defaults, in order."""
    return {
        stmt.target.id: _default(stmt.value)
        for stmt in (node.body if node is not None else [])
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
    }


@functools.cache
def generate_req_input_fields() -> dict[str, Any]:
    """``GenerateReqInput``'s field names -> defaults (``NOT_LITERAL`` where unknown)."""
    return _fields(_class_in("sglang.srt.managers.io_struct", "GenerateReqInput"))


@functools.cache
def sampling_params_keys() -> frozenset[str]:
    """``SamplingParams``' fields: the ``sampling_params`` keys SGLang takes."""
    return frozenset(_fields(_class_in("sglang.srt.sampling.sampling_params", "SamplingParams")))


def _sglang_file(relative: str) -> Path | None:
    spec = importlib.util.find_spec("sglang")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)), relative)


@functools.cache
def _json_schema_validation() -> Any:
    """SGLang's ``constrained/json_schema_validation.py``, loaded on its own: it imports
    nothing of SGLang, while importing it through its package costs ~9 s here."""
    path = _sglang_file("srt/constrained/json_schema_validation.py")
    if path is None or not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("_sglang_json_schema_validation", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_json_schema_as_sglang(schema: Any) -> None:
    """SGLang's own check before it compiles a ``json_schema`` with xgrammar
    (``validate_xgrammar_json_schema``): a ValueError naming what xgrammar would silently
    drop (``pattern`` with ``maxLength``, ``multipleOf``, ...), so both engines refuse the
    same schemas."""
    module = _json_schema_validation()
    if module is not None:
        module.validate_xgrammar_json_schema(schema)


def json_subschema_keywords() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Where a JSON schema holds subschemas, as SGLang's check walks it: keywords holding
    one schema, a list of schemas, a map of schemas (pinned SGLang's module constants;
    tests/test_json_schema_strings.py walks every kind)."""
    module = _json_schema_validation()
    return (
        module._SINGLE_SUBSCHEMA_KEYWORDS,
        module._SUBSCHEMA_ARRAY_KEYWORDS,
        module._SUBSCHEMA_MAP_KEYWORDS,
    )
