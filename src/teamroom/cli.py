"""The teamroom command: ``serve`` for MCP clients, ``demo``, and the human commands."""

from __future__ import annotations

import argparse
import logging
import sys

from teamroom import __version__
from teamroom.config import ENV_DB, ENV_DURABILITY, Settings
from teamroom.errors import TeamroomError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teamroom", description="Coordination for teams of AI coding agents, over MCP.")
    parser.add_argument("--version", action="version", version=f"teamroom {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db_help = (
        f"the store file (env {ENV_DB}; default: one store per git repository, shared by its worktrees,"
        f" else ~/.local/share/teamroom); durability from {ENV_DURABILITY}=normal|full"
    )
    serve = sub.add_parser("serve", help="serve MCP on stdio (what an agent's MCP settings run)")
    serve.add_argument("--db", metavar="PATH", help=db_help)
    serve.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")

    demo = sub.add_parser("demo", help="run a lead and two workers as real server processes and show the exchange")
    demo.add_argument("--db", metavar="PATH", help="store for the demo (default: a fresh temporary file)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(args, "log_level", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            from teamroom.server import serve

            serve(Settings.resolve(args.db))
            return 0
        if args.command == "demo":
            from teamroom.demo import run_demo

            return run_demo(args.db)
    except TeamroomError as exc:
        print(f"teamroom: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2
