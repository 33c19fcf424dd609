"""``python -m reactive``: the command-line entry point."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

_LOCATION_HELP = (
    "Where the kernelspec lives: --user (your Jupyter data directory), --sys-prefix (this "
    "Python environment), or --prefix PATH (PATH/share/jupyter/kernels). With none of them: "
    "--sys-prefix when running inside a virtualenv (sys.prefix != sys.base_prefix), "
    "otherwise --user."
)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error, so a typo does not bury the reason in usage text.

    Exit status stays argparse's 2; subparsers inherit the class (``add_subparsers`` uses
    ``type(self)``).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _add_location(parser: argparse.ArgumentParser) -> None:
    """The three mutually exclusive location flags shared by install and uninstall."""
    group = parser.add_argument_group("location", _LOCATION_HELP)
    flags = group.add_mutually_exclusive_group()
    flags.add_argument("--user", action="store_true", help="the current user's Jupyter dir")
    flags.add_argument("--sys-prefix", action="store_true", help="this Python's sys.prefix")
    flags.add_argument("--prefix", metavar="PATH", help="PATH/share/jupyter/kernels")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m reactive", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="run the example dashboard",
        description="Start JupyterLab on 127.0.0.1 with examples/dashboards/sliders.ipynb "
        "(copied to ./.demo) on the reactive kernel, and print its URL. --headless runs a "
        "core-only demo in the terminal instead.",
    )
    demo.add_argument("--headless", action="store_true", help="core-only demo, no browser")
    demo.add_argument("--events", type=int, default=60, help="slider events (--headless)")

    install = sub.add_parser(
        "install",
        help='install the "Python 3 (reactive)" Jupyter kernel',
        description="Install a kernelspec that starts ipykernel with the reactive extension "
        "loaded; installing again replaces it.",
    )
    _add_location(install)
    install.add_argument("--name", default=None, help="kernelspec name (python3-reactive)")
    install.add_argument(
        "--display-name", default=None, help="name shown in Jupyter (Python 3 (reactive))"
    )

    uninstall = sub.add_parser(
        "uninstall",
        help="remove that kernel",
        description="Remove the kernelspec from one location only (default: the same as for "
        "install).",
    )
    _add_location(uninstall)
    uninstall.add_argument("--name", default=None, help="kernelspec name (python3-reactive)")
    return parser


def _kernelspec_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """install / uninstall; every expected failure is one line on stderr, never a traceback."""
    from reactive.integrations.ipykernel import kernelspec as ks

    prog = f"{parser.prog} {args.command}"
    if args.prefix is not None and not args.prefix.strip():
        parser.exit(2, f"{prog}: error: argument --prefix: expected a non-empty path\n")
    if args.user:
        location = ks.Location(user=True)
    elif args.sys_prefix:
        location = ks.Location(prefix=sys.prefix)
    elif args.prefix is not None:
        location = ks.Location(prefix=args.prefix)
    else:
        location = ks.Location.default()
    name = args.name if args.name is not None else ks.DEFAULT_NAME
    try:
        if args.command == "install":
            dest = ks.install(name, args.display_name or ks.DEFAULT_DISPLAY_NAME, location)
            note = ""
            if not ks.on_search_path(dest):
                note = f" (not on Jupyter's search path: add {dest.parent.parent} to JUPYTER_PATH)"
            print(f"Installed kernelspec {dest.name!r} in {dest}{note}")
        else:
            dest = ks.uninstall(name, location)
            print(f"Removed kernelspec {dest.name!r} from {dest}")
    except ks.KernelspecError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand and return its exit status (the ``reactive`` script's entry point)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.headless:
            from . import demo as demo_mod

            demo_mod.main(events=args.events)
            return 0
        from .integrations import lab

        return lab.main()
    if args.command in ("install", "uninstall"):
        return _kernelspec_command(parser, args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
