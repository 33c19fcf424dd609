"""``python -m reactive``: the command-line entry point."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reactive", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the example dashboard")
    demo.add_argument("--headless", action="store_true", help="core-only demo, no browser")
    demo.add_argument("--events", type=int, default=60)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from . import demo as demo_mod

        demo_mod.main(events=args.events)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
