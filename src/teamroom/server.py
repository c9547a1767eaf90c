"""The MCP server: the only module that imports mcp.

The lifespan opens the store once per process; every tool is a thin typed wrapper over a
function in tools/, and every domain error reaches the agent as a tool error whose text starts
with its code (docs/CONTRACT.md).
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from teamroom import __version__
from teamroom.config import Settings
from teamroom.errors import Invalid, NotFound, TeamroomError
from teamroom.schemas import (
    AckResult,
    AgentsResult,
    HandoffResult,
    HeartbeatResult,
    NackResult,
    PollResult,
    PostResult,
    ReadBoardResult,
    RegisterResult,
    ResumeResult,
    SendResult,
    ThreadResult,
)
from teamroom.schemas.board import BoardKind
from teamroom.schemas.common import MessageKind, Priority
from teamroom.schemas.locks import ClaimResult, LocksResult, ReleaseResult
from teamroom.store import Clock, Store, open_store
from teamroom.tools import agents as agent_tools
from teamroom.tools import board as board_tools
from teamroom.tools import handoffs as handoff_tools
from teamroom.tools import locks as lock_tools
from teamroom.tools import messages as message_tools

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
teamroom coordinates the agents working on this repository. Pass your agent name as `agent` on every call.
1. register once (role, capabilities), then heartbeat every few minutes with your status and task.
2. Work loop: poll(wait_seconds=30) leases messages; handle each, then ack its receipt, or pass the
   receipts to your next poll(ack=[...], wait_seconds=30), which acks them first. If you cannot handle
   one, nack it (it is redelivered, attempt + 1). Unacked leases come back after lease_seconds.
3. send(to=name | [names] | '@all' | '@role', body, kind) to talk; reply_to=message_id keeps a thread.
4. claim_lock(resources=['src/auth/**']) before editing shared files; release_lock when done.
5. Findings go on the board: post_finding(scope=workflow, ...); read_board(scope) returns what is new for you.
   Before you stop or your context resets: handoff(task, summary, next_step, to?); the next agent calls resume.
Errors start with a code (invalid, not_found, not_owner, lease_expired, conflict, too_large, forbidden)
and say how to fix the call."""


@dataclass
class App:
    """What the lifespan yields: the process's store and settings."""

    store: Store
    settings: Settings


Ctx = Context[App]

RO = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)
WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)
IDEMPOTENT = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False)

AgentArg = Annotated[str | None, Field(description="Your name, e.g. 'builder-1' (default $TEAMROOM_AGENT)")]


class TeamroomServer(MCPServer[App]):
    """MCPServer whose tool errors read ``code: how to fix`` with no SDK prefix, and whose tool list
    is as small as it can be: every agent carries it in its context on every turn."""

    _listed: list[Any] | None = None

    async def list_tools(self) -> list[Any]:
        if self._listed is None:
            self._listed = [
                tool.model_copy(
                    update={
                        "input_schema": {
                            **slim_schema(tool.input_schema, nullable=False),
                            "additionalProperties": False,
                        },
                        "output_schema": tool.output_schema and slim_schema(tool.output_schema, nullable=True),
                    }
                )
                for tool in await super().list_tools()
            ]
        return self._listed

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            unknown_parameters(self._tool_manager.get_tool(name), arguments)
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            return CallToolResult(content=[TextContent(type="text", text=error_text(exc))], is_error=True)


def unknown_parameters(tool: Any, arguments: dict[str, Any] | None) -> None:
    """Refuse a parameter the tool does not have: a misspelt option must never fall back to its default."""
    if tool is None or not arguments:
        return
    known = list(tool.parameters.get("properties", {}))
    for key in arguments:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"{tool.name} takes: {', '.join(known)}"
            refusal = Invalid(f"unknown parameter {key!r}; {hint} (nothing was done)")
            raise ToolError(str(refusal)) from refusal


class StringsStayStrings(FuncMetadata):
    """The SDK's argument handling, except that a string stays a string unless it is the JSON text of
    a list or an object sent to a parameter that takes one (``resources='["a.py"]'``).

    The SDK reads every string sent to a parameter not annotated plain ``str`` as JSON first, for
    clients that send lists as text; so ``"null"`` became None and fell back to the default:
    ``subject="null"`` sent no subject, ``author="null"`` or ``holder="null"`` filtered nothing,
    ``agent="null"`` acted as $TEAMROOM_AGENT, ``release_lock(resources="null")`` released every lock,
    ``limit="null"`` took the default. "true" became True and a subject '["x"]' a list, refused.
    """

    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = {info.alias or name: info for name, info in self.arg_model.model_fields.items()}
        fields.update(self.arg_model.model_fields)
        parsed = dict(data)
        for key, value in data.items():
            info = fields.get(key)
            if info is None or not isinstance(value, str) or not _takes_json(info.annotation):
                continue
            try:
                loaded = json.loads(value)
            except (ValueError, RecursionError):
                continue
            if isinstance(loaded, list | dict):
                parsed[key] = loaded
        return parsed


def _takes_json(annotation: Any) -> bool:
    """Whether a parameter of this type takes a list or an object."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _takes_json(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_takes_json(arg) for arg in get_args(annotation))
    if origin in (list, dict, tuple, set) or annotation in (list, dict, tuple, set):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def keep_strings(tools: list[Tool]) -> None:
    """Give every tool `StringsStayStrings`."""
    for tool in tools:
        meta = tool.fn_metadata
        tool.fn_metadata = StringsStayStrings(
            arg_model=meta.arg_model, output_schema=meta.output_schema, output_model=meta.output_model,
            wrap_output=meta.wrap_output,
        )  # fmt: skip


def slim_schema(schema: dict[str, Any], *, nullable: bool) -> dict[str, Any]:
    """A schema without what costs its readers and teaches nothing: generated titles, ``$ref``s (inlined),
    and ``anyOf [X, null]``.

    Input schemas (``nullable=False``) write an optional X as plain X: leaving a parameter out is how
    an agent says "none", and the server still accepts an explicit null. Output schemas keep the
    null as a type list: clients validate every result against them (the Python SDK with jsonschema,
    where a poll's nested ``anyOf`` and ``$ref`` cost more than the call itself did on the server).
    """
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
        out = {k: walk(v) for k, v in node.items() if k != "$defs" and (k != "title" or not isinstance(v, str))}
        if "properties" in node:
            out["properties"] = {name: walk(prop) for name, prop in node["properties"].items()}
        options = out.get("anyOf")
        if not isinstance(options, list) or {"type": "null"} not in options:
            return out
        rest = [o for o in options if o != {"type": "null"}]
        if not nullable:
            del out["anyOf"]
            out.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
            if out.get("default", 0) is None:
                del out["default"]
        elif len(rest) == 1 and isinstance(rest[0].get("type"), str) and "const" not in rest[0]:
            del out["anyOf"]
            out.update(rest[0], type=[rest[0]["type"], "null"])
            if "enum" in rest[0]:
                out["enum"] = [*rest[0]["enum"], None]
        return out

    return walk(schema)


def error_text(exc: ToolError) -> str:
    cause = exc.__cause__
    if isinstance(cause, TeamroomError):
        return str(cause)
    if isinstance(cause, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in cause.errors()[:5]
        )
        return f"invalid: {problems}; check the tool's input schema"
    if cause is None:
        text = str(exc).removeprefix("Error executing tool ")
        return f"not_found: {text}" if text.startswith("Unknown tool") else f"invalid: {text}"
    log.error("tool failed unexpectedly", exc_info=cause)
    return "internal: the server hit an unexpected error (logged on its stderr); retry, or report it"


def build_server(settings: Settings, *, clock: Clock | None = None, store: Store | None = None) -> TeamroomServer:
    """A server for ``settings``; tests pass a clock (or a ready store) to control time."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[App]) -> AsyncIterator[App]:
        the_store = store or open_store(settings.db_path, durability=settings.durability, clock=clock)
        await the_store.open()
        log.info("teamroom %s serving store %s (%s)", __version__, settings.db_path, settings.db_origin)
        current.append(App(the_store, settings))
        try:
            async with anyio.create_task_group() as housekeeping:
                housekeeping.start_soon(the_store.keep_house)  # expiries on time with nobody writing
                if settings.gc_minutes > 0:  # retention (SPEC.md §9), off the calls' path
                    every_s = settings.gc_minutes * 60
                    housekeeping.start_soon(the_store.gc_now_and_then, settings.retention_days, every_s)
                try:
                    yield current[-1]
                finally:
                    housekeeping.cancel_scope.cancel()
        finally:
            current.remove(current[-1])
            await the_store.close()

    # Static resources get no Context in the SDK, so they reach the lifespan's App through this.
    current: list[App] = []

    server = TeamroomServer(
        "teamroom",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level="WARNING",
        tools=list(_tools()),
    )
    _resources(server, current)
    return server


class _ToolTable:
    """Stands in for the server while the tool functions are declared, collecting them as `Tool`s."""

    def __init__(self) -> None:
        self.tools: list[Tool] = []

    def tool(self, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.tools.append(Tool.from_function(fn, **options))
            return fn

        return add


@functools.cache
def _tools() -> tuple[Tool, ...]:
    """Every tool, built once per process: the SDK derives each one's schemas with pydantic (~0.2 s for
    all of them), and the tools hold no state of a server (they find the store through their Context)."""
    table = _ToolTable()
    for declare in (_agent_tools, _message_tools, _lock_tools, _board_tools, _handoff_tools):
        declare(table)
    keep_strings(table.tools)
    return tuple(table.tools)


def _store(ctx: Ctx) -> Store:
    return ctx.request_context.lifespan_context.store


def _me(ctx: Ctx, agent: str | None) -> str | None:
    return agent or ctx.request_context.lifespan_context.settings.default_agent


# --- agents ---------------------------------------------------------------------------------


def _agent_tools(server: _ToolTable) -> None:
    @server.tool(annotations=IDEMPOTENT)
    async def register(
        ctx: Ctx,
        agent: AgentArg = None,
        role: Annotated[
            str | None, Field(description="e.g. 'lead', 'builder', 'reviewer'; '@role' addresses it")
        ] = None,
        capabilities: Annotated[list[str] | None, Field(description="e.g. ['python', 'frontend']")] = None,
        description: str | None = None,
    ) -> RegisterResult:
        """Introduce yourself: role and capabilities let others address you as @role. Calling again updates."""
        return await agent_tools.register(
            _store(ctx), _me(ctx, agent), role, capabilities, description,
            ctx.request_context.lifespan_context.settings.session_id,
        )

    @server.tool(annotations=WRITE)
    async def heartbeat(
        ctx: Ctx,
        agent: AgentArg = None,
        status: Literal["idle", "working", "blocked", "done"] | None = None,
        task: Annotated[str | None, Field(description="What you are working on, one line")] = None,
        note: str | None = None,
    ) -> HeartbeatResult:
        """Say you are alive; renews all your message leases and locks. Returns unread messages and board entries."""
        return await agent_tools.heartbeat(_store(ctx), _me(ctx, agent), status, task, note)

    @server.tool(annotations=RO)
    async def agents(
        ctx: Ctx,
        agent: AgentArg = None,
        role: str | None = None,
        capability: str | None = None,
        include_offline: bool = False,
    ) -> AgentsResult:
        """Who is here: status, task, liveness (live < 2 min, stale < 15 min, offline), locks, unread."""
        return await agent_tools.agents(_store(ctx), _me(ctx, agent), role, capability, include_offline)


# --- messages -------------------------------------------------------------------------------


def _message_tools(server: _ToolTable) -> None:
    @server.tool(annotations=WRITE)
    async def send(
        ctx: Ctx,
        body: Annotated[str, Field(description="The message, up to 64 KiB")],
        to: Annotated[
            str | list[str] | None,
            Field(
                description="'name', ['a', 'b'], '@all' or '@role' (e.g. '@builders'); with reply_to: its sender"
            ),
        ] = None,
        agent: AgentArg = None,
        subject: str | None = None,
        kind: MessageKind = "text",
        payload: Annotated[dict[str, Any] | None, Field(description="Structured data, a JSON object")] = None,
        priority: Priority = "normal",
        thread_id: str | None = None,
        reply_to: Annotated[str | None, Field(description="A message_id: joins its thread")] = None,
        ttl_seconds: Annotated[int | None, Field(description="Expire unacked after this long")] = None,
        max_attempts: Annotated[int, Field(description="Deliveries before it is dead-lettered")] = 5,
        idempotency_key: Annotated[
            str | None, Field(description="Resending with the same key sends nothing new")
        ] = None,
    ) -> SendResult:
        """Send a message. Each recipient gets its own delivery to poll and ack; failures notify you."""
        return await message_tools.send(
            _store(ctx), _me(ctx, agent), to, body, subject, kind, payload, priority, thread_id, reply_to,
            ttl_seconds, max_attempts, idempotency_key,
        )  # fmt: skip

    @server.tool(annotations=WRITE)
    async def poll(
        ctx: Ctx,
        agent: AgentArg = None,
        limit: Annotated[int, Field(description="1-100")] = 10,
        lease_seconds: Annotated[int, Field(description="Ack within this or it is redelivered")] = 300,
        wait_seconds: Annotated[float, Field(description="Block up to this long (max 50) for a message")] = 0,
        kinds: list[MessageKind] | None = None,
        thread_id: str | None = None,
        ack: Annotated[
            list[str] | None, Field(description="Receipts you handled: acked first, all or none, as ack does")
        ] = None,
    ) -> PollResult:
        """Lease your next messages, most urgent first. Ack each receipt when handled (or pass it to the next
        poll's ack), or nack it."""
        return await message_tools.poll(
            _store(ctx), _me(ctx, agent), limit, lease_seconds, wait_seconds, kinds, thread_id, ack
        )

    @server.tool(annotations=IDEMPOTENT)
    async def ack(
        ctx: Ctx,
        receipts: Annotated[list[str], Field(description="Receipts from poll")],
        agent: AgentArg = None,
    ) -> AckResult:
        """Mark messages handled; they never come back. A lapsed or re-leased receipt is lease_expired."""
        return await message_tools.ack(_store(ctx), _me(ctx, agent), receipts)

    @server.tool(annotations=WRITE)
    async def nack(
        ctx: Ctx,
        receipt: str,
        agent: AgentArg = None,
        reason: str | None = None,
        retry_after_seconds: float = 0,
    ) -> NackResult:
        """Hand a message back for redelivery (attempt + 1); on its last attempt it goes dead."""
        return await message_tools.nack(_store(ctx), _me(ctx, agent), receipt, reason, retry_after_seconds)

    @server.tool(annotations=RO)
    async def thread(
        ctx: Ctx,
        thread_id: str,
        agent: AgentArg = None,
        limit: int = 100,
    ) -> ThreadResult:
        """A conversation in order, with each delivery's state (queued, leased, acked, dead, expired)."""
        return await message_tools.thread(_store(ctx), _me(ctx, agent), thread_id, limit)


# --- locks ----------------------------------------------------------------------------------


ResourcesArg = Annotated[
    str | list[str],
    Field(description="Repo-relative paths, globs or names, e.g. ['src/auth/login.py', 'src/api/**', 'deploy:prod']"),
]


def _lock_tools(server: _ToolTable) -> None:
    """claim_lock, release_lock, locks."""

    @server.tool(annotations=WRITE)
    async def claim_lock(
        ctx: Ctx,
        resources: ResourcesArg,
        agent: AgentArg = None,
        mode: Annotated[
            Literal["exclusive", "shared"], Field(description="shared: many readers; exclusive: one writer")
        ] = "exclusive",
        ttl_seconds: Annotated[int, Field(description="Expires unless renewed (heartbeat renews all)")] = 900,
        reason: Annotated[str | None, Field(description="Shown to whoever you block")] = None,
        wait_seconds: Annotated[float, Field(description="Wait up to this long (max 50) for conflicts")] = 0,
    ) -> ClaimResult:
        """Lock paths, globs or names before editing: all or none (`conflicts` say who holds what); keep `token`."""
        return await lock_tools.claim_lock(
            _store(ctx), _me(ctx, agent), resources, mode, ttl_seconds, reason, wait_seconds
        )

    @server.tool(annotations=IDEMPOTENT)
    async def release_lock(
        ctx: Ctx,
        agent: AgentArg = None,
        resources: Annotated[
            str | list[str] | None, Field(description="As claimed; omit to release every lock you hold")
        ] = None,
    ) -> ReleaseResult:
        """Release your locks (all of them without `resources`). Another agent's lock is not_owner."""
        return await lock_tools.release_lock(_store(ctx), _me(ctx, agent), resources)

    @server.tool(annotations=RO)
    async def locks(
        ctx: Ctx,
        agent: AgentArg = None,
        resource: Annotated[
            str | None, Field(description="Only locks overlapping this path, glob or name, e.g. 'src/auth/**'")
        ] = None,
        holder: str | None = None,
        limit: Annotated[int, Field(description="1-100; `more` counts the rest")] = 100,
    ) -> LocksResult:
        """Live locks: who holds what, in which mode, with which fencing token, until when."""
        return await lock_tools.locks(_store(ctx), _me(ctx, agent), resource, holder, limit)


# --- board ----------------------------------------------------------------------------------


def _board_tools(server: _ToolTable) -> None:
    @server.tool(annotations=WRITE)
    async def post_finding(
        ctx: Ctx,
        body: Annotated[str, Field(description="The entry, up to 64 KiB")],
        agent: AgentArg = None,
        title: str | None = None,
        scope: Annotated[
            str | None,
            Field(description="One per workflow, e.g. 'auth-review' (default 'main'); the first poster owns it"),
        ] = None,
        kind: Annotated[
            BoardKind | None, Field(description="Default 'finding'; only the scope's owner posts 'decision'")
        ] = None,
        tags: list[str] | None = None,
        refs: Annotated[list[str] | None, Field(description="Files, ids, URLs")] = None,
        supersedes: Annotated[str | None, Field(description="Id of your own entry this replaces")] = None,
    ) -> PostResult:
        """Publish to a workflow's shared board. Entries are never edited; supersedes replaces one of yours."""
        return await board_tools.post_finding(
            _store(ctx), _me(ctx, agent), body, title, scope, kind, tags, refs, supersedes
        )

    @server.tool(annotations=WRITE)
    async def read_board(
        ctx: Ctx,
        agent: AgentArg = None,
        scope: Annotated[str | None, Field(description="Default 'main'")] = None,
        since: Annotated[
            int | None, Field(description="Read after this seq, mark nothing; omit: only what you have not read")
        ] = None,
        kinds: list[BoardKind] | None = None,
        author: str | None = None,
        tags: Annotated[list[str] | None, Field(description="Entries with any of these tags")] = None,
        limit: Annotated[int, Field(description="1-500")] = 50,
        include_superseded: bool = False,
    ) -> ReadBoardResult:
        """What is new for you on a scope's board, oldest first, then marked read. since=0 reads it all."""
        return await board_tools.read_board(
            _store(ctx), _me(ctx, agent), scope, since, kinds, author, tags, limit, include_superseded
        )


# --- handoffs -------------------------------------------------------------------------------


def _handoff_tools(server: _ToolTable) -> None:
    @server.tool(annotations=WRITE)
    async def handoff(
        ctx: Ctx,
        task: Annotated[str, Field(description="The task's name, e.g. 'fix-token-refresh'")],
        summary: Annotated[str, Field(description="Where things stand now")],
        next_step: Annotated[str, Field(description="The concrete next action for whoever resumes")],
        agent: AgentArg = None,
        to: Annotated[
            str | list[str] | None,
            Field(description="'name' or '@role' (they get a handoff message); omit for your own checkpoint"),
        ] = None,
        done: list[str] | None = None,
        remaining: list[str] | None = None,
        blockers: list[str] | None = None,
        files: list[str] | None = None,
        branch: str | None = None,
        scope: Annotated[str | None, Field(description="The workflow's board scope")] = None,
        transfer_locks: Annotated[
            bool, Field(description="Hold your locks for whoever resumes; nobody can claim them meanwhile")
        ] = False,
    ) -> HandoffResult:
        """Hand a task on, or checkpoint it before you stop: state, what remains, the next step. Kept for good."""
        return await handoff_tools.handoff(
            _store(ctx), _me(ctx, agent), task, summary, next_step, to, done, remaining, blockers, files, branch,
            scope, transfer_locks,
        )  # fmt: skip

    @server.tool(annotations=WRITE)
    async def resume(
        ctx: Ctx,
        agent: AgentArg = None,
        task: str | None = None,
        handoff_id: Annotated[str | None, Field(description="e.g. 'h7'")] = None,
    ) -> ResumeResult:
        """Take a handoff (and any locks held for it): by id, the newest for task, or with no arguments
        the newest addressed to you or your role, else your own last checkpoint (after a crash or reset)."""
        return await handoff_tools.resume(_store(ctx), _me(ctx, agent), task, handoff_id)


# --- resources ------------------------------------------------------------------------------


def _json(model: Any) -> str:
    return model.model_dump_json(by_alias=True, indent=2)


def _resource_errors(fn: Callable[..., Awaitable[str]]) -> Callable[..., Awaitable[str]]:
    """Domain errors from a resource reach the client as their ``code: how to fix`` text."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> str:
        try:
            return await fn(*args, **kwargs)
        except NotFound as exc:
            raise ResourceNotFoundError(str(exc)) from None
        except TeamroomError as exc:
            raise ResourceError(str(exc)) from None

    return wrapper


def _resources(server: TeamroomServer, current: list[App]) -> None:
    @server.resource("teamroom://agents", mime_type="application/json")
    @_resource_errors
    async def agents_resource() -> str:
        """Every agent with liveness, status, locks and unread count."""
        return _json(await agent_tools.agents(current[-1].store, None, include_offline=True))

    @server.resource("teamroom://locks", mime_type="application/json")
    @_resource_errors
    async def locks_resource() -> str:
        """Every live lock: resource, holder, mode, fencing token, reason, expiry."""
        return _json(await lock_tools.locks(current[-1].store, None))

    @server.resource("teamroom://inbox/{agent}", mime_type="application/json")
    @_resource_errors
    async def inbox_resource(agent: str, ctx: Ctx) -> str:
        """What waits for one agent, without leasing anything."""
        return _json(await message_tools.inbox(_store(ctx), agent))

    @server.resource("teamroom://threads/{thread_id}", mime_type="application/json")
    @_resource_errors
    async def thread_resource(thread_id: str, ctx: Ctx) -> str:
        """One conversation with its deliveries."""
        return _json(await message_tools.thread(_store(ctx), None, thread_id))

    @server.resource("teamroom://board/{scope}", mime_type="application/json")
    @_resource_errors
    async def board_resource(scope: str, ctx: Ctx) -> str:
        """A scope's board: its current entries (superseded ones left out), oldest first, up to 500."""
        return _json(await board_tools.read_board(_store(ctx), None, scope, since=0, limit=500))

    @server.resource("teamroom://events", mime_type="application/json")
    @_resource_errors
    async def events_resource() -> str:
        """The newest 200 entries of the audit log."""
        return _json(await message_tools.events(current[-1].store, limit=200))


def serve(settings: Settings) -> None:
    """Serve MCP on stdio until the client closes it.

    A store that cannot be opened (read-only, corrupt, from a newer teamroom) fails inside the
    SDK's task groups; it is re-raised bare so the CLI prints its one line, not a traceback.
    """
    try:
        build_server(settings).run()
    except BaseExceptionGroup as group:
        ours, rest = group.split(TeamroomError)
        if ours is None or rest is not None:
            raise
        raise _first_leaf(ours) from None


def _first_leaf(group: BaseException) -> BaseException:
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group
