"""The teamroom command: ``serve`` for MCP clients, ``demo``, the human commands, hooks and set-up.

The human commands live in `teamroom.console`, the hooks in `teamroom.hooks`, set-up in
`teamroom.init`; this module only parses arguments and dispatches. ``teamroom hook`` imports
nothing heavy: it runs on every prompt an agent gets.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from teamroom import __version__
from teamroom.config import ENV_AGENT, ENV_DB, ENV_DURABILITY, ENV_GC_MINUTES, ENV_RETENTION_DAYS, Settings
from teamroom.errors import TeamroomError
from teamroom.hooks import CLIENTS
from teamroom.hooks import EVENTS as HOOK_EVENTS

if TYPE_CHECKING:
    import argparse

    from teamroom.console import Out

# schemas.common.PRIORITIES, spelt out: importing the schemas (pydantic) before parsing costs every command ~0.15 s
PRIORITIES = ("low", "normal", "high", "urgent")
SERVE_HINT = "teamroom serve speaks MCP on stdio; an MCP client starts it. Ctrl-C to stop"
# Verbs of a command that also reads (``locks [RESOURCE]``, ``agents``): parsed as commands of their own.
SUBVERBS = {("locks", "release"), ("agents", "forget")}


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="teamroom", description="Coordination for teams of AI coding agents, over MCP."
    )
    parser.add_argument("--version", action="version", version=f"teamroom {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db_help = (
        f"the store file (env {ENV_DB}; default: one store per git repository, shared by its worktrees,"
        f" else ~/.local/share/teamroom); durability from {ENV_DURABILITY}=normal|full"
    )
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--db", metavar="PATH", help=db_help)
    human = argparse.ArgumentParser(add_help=False, parents=[store])
    shape = human.add_mutually_exclusive_group()
    shape.add_argument(
        "--json", action="store_true", default=None, help="JSON (the default when stdout is not a terminal)"
    )
    shape.add_argument("--table", dest="json", action="store_false", help="tables even when stdout is not a terminal")

    serve = sub.add_parser("serve", parents=[store], help="serve MCP on stdio (what an agent's MCP settings run)")
    serve.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")

    demo = sub.add_parser("demo", help="run a lead and two workers as real server processes and show the exchange")
    demo.add_argument("--db", metavar="PATH", help="store for the demo (default: a fresh temporary file)")

    status = sub.add_parser("status", parents=[human], help="agents, queue depths, live locks and recent board entries")
    status.add_argument("--all", action="store_true", help="include agents not seen for 15 minutes")
    status.add_argument("--board", type=int, default=10, metavar="N", help="board entries to show (default 10)")
    status.add_argument("--scope", help="the board scope to show (default main)")
    agents = sub.add_parser(
        "agents", parents=[human], help="who is here: liveness, status, task, unread, locks; `agents forget NAME`",
        epilog="teamroom agents forget NAME [--force] takes an agent out of @all and @ROLE (its history stays).",
    )  # fmt: skip
    agents.add_argument("--all", action="store_true", help="include agents not seen for 15 minutes")
    forget = sub.add_parser(
        "agents forget", parents=[human], usage="teamroom agents forget NAME [--force]",
        description="Take NAME out of the known agents, so out of @all and @ROLE; its messages, events and board"
        " entries stay. If it calls teamroom again it is known again.",
    )  # fmt: skip
    forget.add_argument("agent", metavar="NAME")
    forget.add_argument(
        "--force", action="store_true",
        help="even while it is live, has messages waiting (they become dead letters) or holds locks (released)",
    )  # fmt: skip

    inbox = sub.add_parser("inbox", parents=[human], help="what waits for AGENT, without leasing anything")
    inbox.add_argument("agent", metavar="AGENT")
    inbox.add_argument("--limit", type=int, default=100, help="at most this many (1-500, default 100)")

    send = sub.add_parser("send", parents=[human], help="send a message (a human is an agent too: --as human)")
    send.add_argument("to", metavar="TO", help="a name, names separated by commas, @all or @ROLE")
    send.add_argument("body", metavar="BODY", help="the message; - reads it from stdin")
    send.add_argument(
        "--as", dest="sender", default="human",
        help="send for this existing agent, on its behalf: it does not look alive for it, the log says by human",
    )  # fmt: skip
    send.add_argument("--subject")
    send.add_argument(
        "--kind", default="text", help="text, question, answer, assign, decision_gate, ... (default text)"
    )
    send.add_argument("--priority", choices=tuple(PRIORITIES), default="normal")
    send.add_argument("--thread", dest="thread_id", metavar="THREAD_ID")
    send.add_argument("--reply-to", metavar="MESSAGE_ID", help="joins its thread; TO may then be its sender")
    send.add_argument("--ttl", dest="ttl_seconds", type=int, metavar="SECONDS", help="expire unacked after this long")
    send.add_argument("--key", dest="idempotency_key", help="an idempotency key: resending with it sends nothing new")

    poll = sub.add_parser(
        "poll", parents=[human], help="lease the messages waiting for you (human), to read and then ack"
    )
    poll.add_argument("--as", dest="agent", default="human", help="poll for this existing agent (default human)")
    poll.add_argument("--limit", type=int, default=10, help="at most this many (1-100, default 10)")
    poll.add_argument(
        "--lease", dest="lease_seconds", type=int, default=300, metavar="SECONDS",
        help="ack within this long, or each comes back (default 300)",
    )  # fmt: skip
    poll.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait up to this long for one (0-50)")
    poll.add_argument("--kind", dest="kinds", action="append", metavar="KIND", help="only this kind (repeatable)")
    poll.add_argument(
        "--ack", action="append", metavar="RECEIPT", help="ack this receipt first, in the same step (repeatable)"
    )
    ack = sub.add_parser("ack", parents=[human], help="acknowledge messages from poll by their receipts")
    ack.add_argument("receipts", metavar="RECEIPT", nargs="+")
    ack.add_argument("--as", dest="agent", default="human", help="ack for this existing agent (default human)")

    thread = sub.add_parser("thread", parents=[human], help="a conversation in order, with each delivery's state")
    thread.add_argument("thread_id", metavar="THREAD_ID")
    thread.add_argument("--limit", type=int, default=100, help="at most this many messages (1-500)")

    board = sub.add_parser("board", parents=[human], help="the findings board of SCOPE (default main), read-only")
    board.add_argument("scope", metavar="SCOPE", nargs="?")
    board.add_argument("--since", type=int, metavar="SEQ", help="the entries after this seq (default: the newest)")
    board.add_argument("--kind", dest="kinds", action="append", metavar="KIND", help="only this kind (repeatable)")
    board.add_argument("--author")
    board.add_argument(
        "--tag", dest="tags", action="append", metavar="TAG", help="only entries with this tag (repeatable)"
    )
    board.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    board.add_argument("--superseded", action="store_true", help="include superseded entries")

    locks = sub.add_parser(
        "locks", parents=[human], help="the live locks (overlapping RESOURCE); `locks release RESOURCE --force`",
        epilog="teamroom locks release RESOURCE --force [--holder NAME] takes a lock away from its holder.",
    )  # fmt: skip
    locks.add_argument("resource", metavar="RESOURCE", nargs="?")
    locks.add_argument("--holder")
    release = sub.add_parser(
        "locks release", parents=[human], usage="teamroom locks release RESOURCE --force [--holder NAME]",
        description="Release the locks on exactly RESOURCE for their holder (logged as by human).",
    )  # fmt: skip
    release.add_argument("resource", metavar="RESOURCE")
    release.add_argument("--force", action="store_true", help="yes, take it from its holder (it is not told)")
    release.add_argument("--holder", help="only this holder's lock (a shared lock may have several)")

    log = sub.add_parser("log", parents=[human], help="the audit log of every state change; -f follows it")
    log.add_argument("-f", "--follow", action="store_true", help="keep printing new events as they happen")
    log.add_argument("--agent", help="only events of this agent")
    log.add_argument(
        "--kind", dest="kinds", action="append", metavar="KIND", help="only this kind (repeatable), e.g. send"
    )
    log.add_argument("--limit", type=int, default=50, help="how many recent events first (1-1000, default 50)")

    gc = sub.add_parser(
        "gc", parents=[human],
        help=f"delete what finished over {ENV_RETENTION_DAYS} (14) days ago; old events go to the archive first",
        description=f"Servers run this by themselves every {ENV_GC_MINUTES} (60) minutes (0: never).",
    )  # fmt: skip
    gc.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
    sub.add_parser("stats", parents=[human], help="queues per agent (queued, leased, dead, oldest), locks, size, log")
    dead = sub.add_parser("dead", parents=[human], help="dead letters (of AGENT): messages that ran out of attempts")
    dead.add_argument("agent", metavar="AGENT", nargs="?")
    dead.add_argument("--limit", type=int, default=100, help="at most this many (1-10000, default 100)")
    redrive = sub.add_parser("redrive", parents=[human], help="queue dead letters again, attempts from 0")
    which = redrive.add_mutually_exclusive_group(required=True)
    which.add_argument("message_id", metavar="ID", nargs="?", help="a message id (m42): its dead deliveries")
    which.add_argument("--all", action="store_true", help="every dead letter")
    redrive.add_argument("--agent", help="only those to this agent")
    backup = sub.add_parser("backup", parents=[human], help="a consistent copy of the live store (agents may go on)")
    backup.add_argument("path", metavar="PATH", type=Path, help="a new file, or a directory to put a dated copy in")
    doctor = sub.add_parser("doctor", parents=[human], help="why can't my agent see teamroom? the store, the configs")
    doctor.add_argument("--dir", type=Path, help="the project (default: the top of the current git work tree)")

    web = sub.add_parser("web", parents=[store], help="the live dashboard on 127.0.0.1 (see README: Dashboard)")
    web.add_argument(
        "--port", type=int, metavar="PORT", help="port (env TEAMROOM_WEB_PORT; default 7410; 0 picks a free one)"
    )

    worker = sub.add_parser(
        "worker",
        parents=[store],
        help="run CMD on every message AGENT gets: any command as an agent (see README: Worker)",
        usage="teamroom worker AGENT [options] -- CMD [ARGS...]",
        description="Takes AGENT's messages one at a time per slot and runs CMD on each: the message as JSON on"
        " stdin, its ids in TEAMROOM_MESSAGE_ID, TEAMROOM_FROM, TEAMROOM_THREAD_ID, TEAMROOM_RECEIPT. Exit 0 acks"
        " (stdout, when not empty, is replied as a `result`); anything else nacks with the tail of stderr.",
    )
    worker.add_argument("agent", metavar="AGENT")
    worker.add_argument("--role", help="register AGENT with this role (so @ROLE reaches it)")
    worker.add_argument(
        "--kinds", type=_names, metavar="K,...", help="only messages of these kinds (default: every kind)"
    )
    worker.add_argument("--tasks", action="store_true", help="claim tasks instead (refused: no task list yet)")
    worker.add_argument("--concurrency", type=int, default=1, metavar="N", help="run N commands at once (default 1)")
    worker.add_argument(
        "--timeout", type=float, default=3600, metavar="S",
        help="kill CMD and nack after S seconds (default 3600; 0: none)",
    )  # fmt: skip
    worker.add_argument(
        "--lease", type=int, default=60, metavar="S", help="lease seconds, renewed while CMD runs (default 60)"
    )
    worker.add_argument(
        "--grace", type=float, default=30, metavar="S",
        help="on SIGTERM, let running commands finish for S seconds, then give their work back (default 30)",
    )  # fmt: skip
    worker.add_argument(
        "--backoff", type=float, default=1, metavar="S",
        help="pause S seconds after a failure, doubling with each failure in a row up to 60 (default 1)",
    )  # fmt: skip
    worker.add_argument("--log-level", default="INFO", help="stderr log level (default INFO: one line per job)")
    worker.set_defaults(command_line=[])  # what follows `--`, split off before parsing (see _worker_command)

    hook = sub.add_parser(
        "hook",
        help="a client hook: reads its JSON on stdin, prints what the agent should know (see README: Hooks)",
        description=f"The agent is ${ENV_AGENT}, else the agent that registered through the session's server.",
    )
    hook.add_argument("client", choices=CLIENTS)
    hook.add_argument("--event", choices=HOOK_EVENTS, help="override hook_event_name")

    init = sub.add_parser("init", help="set a project up for Claude Code or Codex (merges, never clobbers)")
    init.add_argument("client", choices=CLIENTS)
    init.add_argument("--dir", type=Path, help="the project (default: the top of the current git work tree)")
    init.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
    return parser


def _names(value: str) -> tuple[str, ...]:
    """``a,b, c`` as a tuple of names."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    hook = _hook_call(argv)
    if hook is not None:  # the hot path: runs on every prompt an agent gets
        from teamroom.hooks import main as hook_main

        return hook_main(*hook)
    argv, command_line = _worker_command(argv)
    if tuple(argv[:2]) in SUBVERBS:
        argv = [" ".join(argv[:2]), *argv[2:]]
    args = _parser().parse_args(argv)
    if command_line is not None:
        args.command_line = command_line
    import logging

    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(args, "log_level", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _dispatch(args)
    except TeamroomError as exc:
        print(f"teamroom: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `teamroom log | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _worker_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``worker ... -- CMD ARGS`` split at the first ``--``: argparse would read CMD's own flags as the worker's."""
    if argv[:1] != ["worker"] or "--" not in argv:
        return argv, None
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def _hook_call(argv: list[str]) -> tuple[str, str | None] | None:
    """``hook CLIENT [--event EVENT]`` parsed without argparse (a few ms on every prompt); else None."""
    if len(argv) < 2 or argv[0] != "hook" or argv[1] not in CLIENTS:
        return None
    if len(argv) == 2:
        return argv[1], None
    if len(argv) == 4 and argv[2] == "--event" and argv[3] in HOOK_EVENTS:
        return argv[1], argv[3]
    return None


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(Settings.resolve(args.db))
    if args.command == "demo":
        from teamroom.demo import run_demo

        return run_demo(args.db)
    if args.command == "web":
        from teamroom.web import serve_web

        return serve_web(Settings.resolve(args.db), args.port)
    if args.command == "worker":
        from teamroom.worker import Options
        from teamroom.worker import main as worker_main

        options = Options(
            args.agent, tuple(args.command_line), role=args.role, kinds=args.kinds, tasks=args.tasks,
            concurrency=args.concurrency, timeout=args.timeout or None, lease=args.lease, grace=args.grace,
            backoff=args.backoff,
        )  # fmt: skip
        return worker_main(options, Settings.resolve(args.db))
    if args.command == "init":
        from teamroom.init import init, project_dir

        report = init(args.client, (args.dir or project_dir(Path.cwd())).resolve(), dry_run=args.dry_run)
        print(f"{'would change' if args.dry_run else 'teamroom init'} {args.client} in {report.project}:")
        for line in report.lines:
            print(f"  {line}")
        return 0
    return _human(args)


def _serve(settings: Settings) -> int:
    """Serve MCP on stdio; a person who started it in a terminal is told what it is and how to stop it."""
    import signal

    if sys.stdin.isatty():
        print(SERVE_HINT, file=sys.stderr, flush=True)
    # The SDK reads stdin on a worker thread that a KeyboardInterrupt cannot wake, so the default
    # handler leaves the process hanging after Ctrl-C. Exit at once instead: every write is one
    # SQLite transaction, so stopping here is as safe as the kill -9 the guarantees are tested with.
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    from teamroom.server import serve

    serve(settings)
    return 0


def _human(args: argparse.Namespace) -> int:
    from teamroom import console, human

    settings, out = Settings.resolve(args.db), console.Out(args.json)
    match args.command:
        case "status":
            return console.run(console.status, settings, out, args.all, args.scope, args.board)
        case "agents":
            return console.run(console.agents, settings, out, args.all)
        case "inbox":
            return console.run(console.inbox, settings, out, args.agent, args.limit)
        case "send":
            body = sys.stdin.read() if args.body == "-" else args.body
            options = {
                k: getattr(args, k)
                for k in ("subject", "kind", "priority", "thread_id", "ttl_seconds", "idempotency_key")
            }
            return console.run(
                human.send, settings, out, args.sender, args.to, body, reply_to=args.reply_to, **options
            )
        case "poll":
            poll = (args.agent, args.limit, args.lease_seconds, args.wait, args.kinds, args.ack)
            return console.run(human.poll, settings, out, *poll)
        case "ack":
            return console.run(human.ack, settings, out, args.agent, args.receipts)
        case "thread":
            return console.run(console.thread, settings, out, args.thread_id, args.limit)
        case "board":
            filters = {
                "kinds": args.kinds,
                "author": args.author,
                "tags": args.tags,
                "include_superseded": args.superseded,
            }
            return console.run(console.board, settings, out, args.scope, args.since, args.limit, **filters)
        case "locks":
            return console.run(console.locks, settings, out, args.resource, args.holder)
        case "log":
            return console.run(console.log, settings, out, args.follow, args.agent, args.kinds, args.limit)
    return _operator(args, settings, out)


def _operator(args: argparse.Namespace, settings: Settings, out: Out) -> int:
    from teamroom import console, operations

    match args.command:
        case "gc":
            return console.run(operations.gc, settings, out, args.dry_run)
        case "stats":
            return console.run(operations.stats, settings, out)
        case "dead":
            return console.run(operations.dead, settings, out, args.agent, args.limit)
        case "redrive":
            return console.run(operations.redrive, settings, out, args.message_id, args.agent)
        case "backup":
            return console.run(operations.backup, settings, out, args.path)
        case "locks release":
            return console.run(operations.release_lock, settings, out, args.resource, args.holder, args.force)
        case "agents forget":
            return console.run(operations.forget, settings, out, args.agent, args.force)
        case "doctor":
            from teamroom.doctor import diagnose, show
            from teamroom.init import project_dir

            return show(diagnose(settings, (args.dir or project_dir(Path.cwd())).resolve()), out)
    return 2
