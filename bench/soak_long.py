"""The long variants of the soak and fuzz tests (``make bench``; ``make test`` runs the
short ones): the same tests, with a longer soak, more clients and more fuzz examples.

    python -m bench.soak_long                       # ~9 min: 300 s soak x 128 clients,
                                                    # 200 fuzz examples per operation
    python -m bench.soak_long --soak-seconds 3600   # an hour

The soak's figures (request counts, peak streams, RSS before/after, engine requests left
after the aborts) go to ``--out``; the exit status is pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pytest


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--soak-seconds", type=float, default=300)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--fuzz-examples", type=int, default=200)
    parser.add_argument("--out", default="bench/results/soak_long.json")
    args = parser.parse_args()

    report = Path(args.out).with_suffix(".soak.tmp.json")
    os.environ.update(
        OMNI_SGLANG_SOAK_SECONDS=str(args.soak_seconds),
        OMNI_SGLANG_SOAK_CONCURRENCY=str(args.concurrency),
        OMNI_SGLANG_FUZZ_EXAMPLES=str(args.fuzz_examples),
        OMNI_SGLANG_SOAK_REPORT=str(report),
    )
    # pyproject's 300 s per-test timeout is for `make test`; these run as long as asked.
    timeout = int(args.soak_seconds + 10 * args.fuzz_examples + 600)
    status = pytest.main(
        [
            *("-q", "-p", "no:cacheprovider", f"--timeout={timeout}"),
            *("tests/test_soak.py", "tests/test_fuzz.py"),
        ]
    )
    result = {
        "benchmark": "soak_long",
        "soak_seconds": args.soak_seconds,
        "concurrency": args.concurrency,
        "fuzz_examples_per_operation_and_mode": args.fuzz_examples,
        "pytest_exit_status": int(status),
        "soak": json.loads(report.read_text()) if report.exists() else None,
    }
    report.unlink(missing_ok=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
