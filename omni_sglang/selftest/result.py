"""One check's outcome, and the exception a check raises to fail or skip itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "skip"]


class CheckFailed(AssertionError):
    """The server did something the check does not allow: the message says what."""


class CheckSkipped(Exception):
    """The check cannot run against this server: the message says why and what would
    let it run (never used for a feature that should work but does not)."""


@dataclass
class Result:
    name: str
    status: Status
    detail: str
    seconds: float
    #: Numbers a check measured (token counts, TTFT, tokens/s), for the JSON report.
    metrics: dict[str, Any] = field(default_factory=dict)
    #: True for checks only a real checkpoint passes (the answer is judged).
    real_model: bool = False


def expect(condition: object, message: str) -> None:
    """A check's assertion; unlike ``assert`` it survives ``python -O``."""
    if not condition:
        raise CheckFailed(message)


def run_check(
    name: str, fn: Callable[[dict[str, Any]], str], *, real_model: bool = False
) -> Result:
    """Run one check; ``fn`` fills the metrics dict it is given and returns its detail."""
    metrics: dict[str, Any] = {}
    start = time.monotonic()
    try:
        detail, status = fn(metrics), "pass"
    except CheckSkipped as exc:
        detail, status = str(exc), "skip"
    except CheckFailed as exc:
        detail, status = str(exc), "fail"
    except Exception as exc:  # a crash in a check is that check's failure, not the run's
        detail, status = f"{type(exc).__name__}: {exc}", "fail"
    return Result(name, status, detail, time.monotonic() - start, metrics, real_model)  # type: ignore[arg-type]
