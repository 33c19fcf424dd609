"""``python -m benchmarks [name ...]``: run benchmarks, rewrite their README section."""

from __future__ import annotations

import argparse
import sys

from . import core, kernel, memo, report, soak, widgets

SUITES = {
    "core": core.run,
    "kernel": kernel.run,
    "widgets": widgets.run,
    "memo": memo.run,
    "soak": soak.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], default=list(SUITES))
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    args = parser.parse_args(argv)
    for name in args.suites or list(SUITES):
        print(f"== {name}", flush=True)
        table = SUITES[name](quick=args.quick)
        print(table)
        if not args.quick:
            report.write_section(name, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
