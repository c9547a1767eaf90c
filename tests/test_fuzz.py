"""Fuzzing every tool through the in-process MCP client.

Hypothesis builds arguments for each tool that tools/list announces, from its input schema: valid
values (from a table of hints by parameter name), edge values at the SPEC limits, and hostile
ones (huge strings, unicode, control characters, NUL, lone surrogates, path tricks, wrong types,
deep nesting). Every call must come back as a result or as a tool error whose text starts with a
SPEC code, and a refused call must leave every table but the audit log as it was.

A new tool is fuzzed as soon as it is registered; give its parameters hints in HINTS so that some
calls get past validation.
"""

from __future__ import annotations

import json
import re
import sqlite3
import string
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as seeded
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from teamroom.schemas.common import MESSAGE_KINDS
from tests.conftest import ToolFailed, in_process
from tests.storeview import SPEC_CODES, diff, snapshot

EXAMPLES_PER_TOOL = 60
ROUNDS = 5  # seeded rounds of EXAMPLES_PER_TOOL at most, per tool

FUZZ = settings(
    max_examples=EXAMPLES_PER_TOOL,
    derandomize=False,  # seeded instead (`seeded`): a failure names its round, and reproduces
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


class Pick(NamedTuple):
    """An id of a kind that exists in the store (a receipt, a message...), chosen when the call is made."""

    pool: str
    index: int


def pick(pool: str) -> st.SearchStrategy[Pick]:
    return st.integers(0, 1_000).map(lambda i: Pick(pool, i))


# --- values ------------------------------------------------------------------------------------

AGENTS = ["lead", "builder-1", "builder-2", "reviewer"]
ROLES = ["lead", "builder", "builder", "reviewer"]

HOSTILE_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "lone \udfff surrogate", "\u202eevil", "\x1b[31mred", "\r\n", "\t",
    "a/./../../b", "../../etc/passwd", "/etc/passwd", "\\", "..\\..\\x", "C:\\x", "./a//b", "**", "a/**/../b",
    "@", "@@all", "@all", "@ ", "'; DROP TABLE messages; --", "%s%n%x", "{}", "null",
    "m0", "m-1", "m99999999999999999999",
    "r1.", "r" + "9" * 30 + ".x", "🦀" * 50, "é" * 300, "x" * 201, "x" * 4097, "x" * 65_537, "é" * 32_769,
    "x" * 300_000,
]  # fmt: skip
HOSTILE_OTHER: list[Any] = [
    None, 0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**30, 0.5, -0.0, 1e308, True, False,
    [], [None], [1, 2], ["a"] * 101, [""] * 3, {}, {"a": 1}, {"": None}, [[["deep"]]],
]  # fmt: skip


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"n": value}
    return value


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
hostile = (
    st.sampled_from(HOSTILE_TEXT)
    | st.sampled_from(HOSTILE_OTHER)
    | st.text(max_size=40)
    | st.builds(nested, st.sampled_from([20, 60]))
)
agent_name = st.sampled_from(AGENTS) | st.from_regex(re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"), fullmatch=True)
short_text = st.text(max_size=80) | st.sampled_from(["x" * 200, "x" * 4096, "é" * 100])
label = st.text(alphabet=string.ascii_letters + string.digits + "-_.:/", min_size=1, max_size=30)


def ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high) | st.sampled_from([low, high, low - 1, high + 1])


BOARD_KINDS = ["finding", "status", "intent", "question", "decision", "note"]

# Valid (and edge) values by parameter name; anything not here gets values from its schema type.
HINTS: dict[str, st.SearchStrategy[Any]] = {
    "agent": agent_name | pick("owner"),
    "to": agent_name
    | st.sampled_from(["@all", "@builder", "@builders", "@lead", "@nobody"])
    | st.lists(agent_name, min_size=1, max_size=3),
    "body": st.text(min_size=1, max_size=200) | st.sampled_from(["x" * 65_536, "é" * 32_768]),
    "subject": short_text,
    "title": short_text,
    "kind": st.sampled_from([*MESSAGE_KINDS, *BOARD_KINDS]),
    "kinds": st.lists(st.sampled_from([*MESSAGE_KINDS, *BOARD_KINDS]), max_size=3),
    "priority": st.sampled_from(["low", "normal", "high", "urgent"]),
    "status": st.sampled_from(["idle", "working", "blocked", "done"]),
    "payload": st.dictionaries(st.text(max_size=10), JSON, max_size=5),
    "thread_id": pick("thread_id"),
    "reply_to": pick("message_id"),
    "receipt": pick("receipt"),
    "receipts": st.lists(pick("receipt"), min_size=1, max_size=4),
    "ttl_seconds": ints(1, 86_400) | st.just(30 * 86_400),
    "lease_seconds": ints(1, 86_400),
    "max_attempts": ints(1, 100),
    "limit": ints(1, 100) | st.sampled_from([500, 501]),
    "wait_seconds": st.sampled_from([0, 0.001, -1, 50.001, 1e9]),  # never a real wait: the fuzz must stay fast
    "retry_after_seconds": st.sampled_from([0, 0.5, 86_400, -1, 86_401]),
    "idempotency_key": label,
    "role": st.sampled_from(["lead", "builder", "reviewer", "builders"]) | label,
    "capability": label,
    "capabilities": st.lists(label, max_size=4),
    "description": short_text,
    "task": st.sampled_from(["release", "fix-cache"]) | st.text(min_size=1, max_size=80),
    "summary": st.text(min_size=1, max_size=200),
    "next_step": st.text(min_size=1, max_size=200),
    "done": st.lists(short_text, max_size=3),
    "remaining": st.lists(short_text, max_size=3),
    "blockers": st.lists(short_text, max_size=3),
    "files": st.lists(st.sampled_from(["src/app.py", "README.md", "a/./../../b"]) | label, max_size=3),
    "branch": label,
    "note": short_text,
    "reason": short_text,
    "include_offline": st.booleans(),
    # locks, board and handoffs (issues 3 and 4)
    "resources": st.lists(
        st.sampled_from(["src/a.py", "src/**", "*.md", "deploy:prod", "a/./../../b", "/abs", "..", "a\\b"]) | label,
        max_size=4,
    ),
    "resource": st.sampled_from(["src/a.py", "src/**", "deploy:prod"]) | label,
    "holder": agent_name,
    "mode": st.sampled_from(["exclusive", "shared"]),
    "scope": st.sampled_from(["main", "feature-x"]) | label,
    "since": ints(0, 100),
    "tags": st.lists(label, max_size=4),
    "refs": st.lists(label, max_size=4),
    "author": agent_name,
    "supersedes": pick("id"),
    "handoff_id": pick("handoff_id"),
    "include_superseded": st.booleans(),
    "transfer_locks": st.booleans(),
}
# Never handed a hostile value that is valid for it: a long wait would only make the fuzz slow.
NO_HOSTILE = {"wait_seconds"}


def by_type(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    types = {s.get("type") for s in schema.get("anyOf", [schema])}
    options: list[st.SearchStrategy[Any]] = []
    if "string" in types:
        options.append(short_text)
    if "integer" in types:
        options.append(ints(0, 100))
    if "number" in types:
        options.append(st.floats(0, 100))
    if "boolean" in types:
        options.append(st.booleans())
    if "array" in types:
        options.append(st.lists(short_text, max_size=4))
    if "object" in types:
        options.append(st.dictionaries(st.text(max_size=10), JSON, max_size=4))
    return st.one_of(options) if options else hostile


@st.composite
def arguments(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    """Each parameter present or not; none, one or a few of the present ones hostile, the rest plausible."""
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    present = [name for name in properties if draw(st.integers(0, 9)) < (9 if name in required else 5)]
    spoilable = [name for name in present if name not in NO_HOSTILE]
    spoiled = (
        draw(st.sets(st.sampled_from(spoilable), max_size=draw(st.sampled_from([0, 1, 1, 2, 3]))))
        if spoilable
        else set()
    )
    args = {name: draw(hostile if name in spoiled else HINTS.get(name, by_type(properties[name]))) for name in present}
    if draw(st.integers(0, 19)) == 0:
        args[draw(st.sampled_from(["extra", "__proto__", "agent "]))] = draw(hostile)
    return args


# --- the store the calls act on ----------------------------------------------------------------


class Pools:
    """Ids the fuzz has seen, by kind, so that some calls name things that exist."""

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = defaultdict(list)
        self.owners: dict[str, str] = {}  # receipt -> the agent that polled it

    def learn(self, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("message_id", "thread_id", "receipt", "id", "handoff_id", "reply_to") and isinstance(
                    item, str
                ):
                    if item not in self.ids[key]:
                        self.ids[key].append(item)
                else:
                    self.learn(item)
        elif isinstance(value, list):
            for item in value:
                self.learn(item)

    def learn_receipts(self, agent: str, result: dict[str, Any]) -> None:
        for message in result.get("messages", []):
            self.owners[message["receipt"]] = agent
        self.learn(result)

    def resolve_call(self, args: dict[str, Any]) -> dict[str, Any]:
        """Resolve the picks; the ``owner`` pick names the agent that holds the call's receipt."""
        resolved = {k: self.resolve(v) for k, v in args.items() if not isinstance(v, Pick) or v.pool != "owner"}
        for key, value in args.items():
            if isinstance(value, Pick) and value.pool == "owner":
                receipts = resolved.get("receipts") or [resolved.get("receipt")]
                first = receipts[0] if isinstance(receipts, list) and receipts else None
                resolved[key] = self.owners.get(first) if isinstance(first, str) else None
                resolved[key] = resolved[key] or AGENTS[value.index % len(AGENTS)]
        return resolved

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Pick):
            known = self.ids.get(value.pool) or [f"no-{value.pool}"]
            return known[value.index % len(known)]
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value


async def seed(call, pools: Pools) -> None:
    """A few agents with roles, messages between them, and live receipts."""
    await refill(call, pools)


async def refill(call, pools: Pools) -> None:
    """The agents' roles, fresh messages and live receipts for every agent, before each tool's turn.

    The roles again each time: a fuzzed `register` may have given both builders another role.
    """
    for name, role in zip(AGENTS, ROLES, strict=True):
        pools.learn(await call("register", agent=name, role=role, capabilities=["python"]))
    for i in range(len(AGENTS) * 2):
        sender, to = AGENTS[i % 4], AGENTS[(i + 1) % 4]
        pools.learn(await call("send", agent=sender, to=to, body=f"hello {i}", subject="s", payload={"i": i}))
    pools.learn(await call("send", agent="lead", to="@builders", body="to all builders"))
    for name in AGENTS:
        pools.learn_receipts(name, await call("poll", agent=name, limit=2, lease_seconds=3600))


# --- the test ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_tool_answers_any_arguments_with_a_result_or_a_spec_error_and_a_refusal_changes_nothing(
    db_path: Path, clock
) -> None:
    async with in_process(db_path, clock) as call:
        tools = (await call.client.list_tools()).tools
        pools = Pools()
        await seed(call, pools)
        seen: dict[str, set[str]] = defaultdict(set)  # tool -> outcomes: "ok" and error codes

        async def one(tool: str, args: dict[str, Any]) -> None:
            before = await anyio.to_thread.run_sync(snapshot, db_path)
            try:
                result = await call(tool, **args)
            except ToolFailed as failure:
                assert failure.code in SPEC_CODES, f"{tool}({_show(args)}) answered outside SPEC: {failure.text[:300]}"
                assert failure.text.split(":", 1)[1].strip(), f"{tool}: an error with no text"
                after = await anyio.to_thread.run_sync(snapshot, db_path)
                assert before == after, (
                    f"refused {tool}({_show(args)}) ({failure.text[:100]}) changed {diff(before, after)}"
                )
                seen[tool].add(failure.code)
            else:
                json.dumps(result)
                if tool == "poll":
                    pools.learn_receipts(args.get("agent"), result)
                pools.learn(result)
                seen[tool].add("ok")

        def fuzz(tool) -> None:
            # Hypothesis mixes constants it finds in the loaded modules of this project into what it
            # draws, so the same seed gives other examples when other modules are loaded (the whole
            # suite, or one more module in src). A tool whose calls rarely pass validation could then
            # draw no valid call at all: run further seeded rounds until it has both succeeded and
            # been refused, or until ROUNDS say the fuzz does not reach past validation.
            for round_ in range(ROUNDS):

                @FUZZ
                @seeded(round_)
                @given(arguments(tool.input_schema))
                def examples(args: dict[str, Any]) -> None:
                    anyio.from_thread.run(one, tool.name, pools.resolve_call(args))

                examples()
                if {"ok", "invalid"} <= seen[tool.name]:
                    return

        for tool in tools:
            await refill(call, pools)
            await anyio.to_thread.run_sync(fuzz, tool)

    # The fuzz reached past validation: every tool both succeeded and refused at least once.
    for tool in tools:
        assert "ok" in seen[tool.name] and "invalid" in seen[tool.name], f"{tool.name}: only {seen[tool.name]}"


# A call each tool accepts; the matrix below spoils one parameter of it at a time.
BASELINE: dict[str, dict[str, Any]] = {
    "register": {"agent": "lead", "role": "lead"},
    "heartbeat": {"agent": "lead", "status": "working"},
    "agents": {"agent": "lead"},
    "send": {"agent": "lead", "to": "builder-1", "body": "hi"},
    "poll": {"agent": "reviewer", "limit": 1, "lease_seconds": 60},
    "ack": {"agent": Pick("owner", 0), "receipts": [Pick("receipt", 0)]},
    "nack": {"agent": Pick("owner", 0), "receipt": Pick("receipt", 0)},
    "thread": {"agent": "lead", "thread_id": Pick("thread_id", 0)},
    "claim_lock": {"agent": "builder-1", "resources": ["src/app.py"], "ttl_seconds": 60},
    "release_lock": {"agent": "builder-1", "resources": ["src/app.py"]},
    "locks": {"agent": "lead"},
    "post_finding": {"agent": "lead", "body": "the cache is stale"},
    "read_board": {"agent": "lead"},
    "handoff": {"agent": "lead", "task": "release", "summary": "half done", "next_step": "tag it"},
    "resume": {"agent": "lead", "task": "release"},
}


@pytest.mark.anyio
async def test_every_hostile_value_in_every_parameter_of_every_tool_is_refused_cleanly_or_accepted(
    db_path: Path, clock
) -> None:
    async with in_process(db_path, clock) as call:
        tools = (await call.client.list_tools()).tools
        missing = [t.name for t in tools if t.name not in BASELINE]
        assert not missing, f"add a baseline call for {missing} to BASELINE"
        pools = Pools()
        await seed(call, pools)
        reader = sqlite3.connect(db_path, timeout=10)
        version = reader.execute("PRAGMA data_version").fetchone()[0]
        outcomes = Counter()
        for tool in tools:
            for param in tool.input_schema["properties"]:
                for value in [*HOSTILE_TEXT, *HOSTILE_OTHER, nested(60)]:
                    if param in NO_HOSTILE and isinstance(value, (int, float)) and 0 <= value <= 50:
                        continue
                    args = pools.resolve_call({**BASELINE[tool.name], param: value})
                    try:
                        result = await call(tool.name, **args)
                    except ToolFailed as failure:
                        assert failure.code in SPEC_CODES, f"{tool.name}({param}={value!r:.60}): {failure.text[:300]}"
                        now = reader.execute("PRAGMA data_version").fetchone()[0]
                        assert now == version, f"refused {tool.name}({param}={value!r:.60}) committed a change"
                        outcomes[failure.code] += 1
                    else:
                        if tool.name == "poll":
                            pools.learn_receipts(args.get("agent"), result)
                        pools.learn(result)
                        outcomes["ok"] += 1
                    version = reader.execute("PRAGMA data_version").fetchone()[0]
        reader.close()
    assert outcomes["invalid"] > 0 and outcomes["too_large"] > 0 and outcomes["ok"] > 0, outcomes


@pytest.mark.anyio
async def test_an_unknown_tool_is_not_found(db_path: Path) -> None:
    async with in_process(db_path) as call:
        with pytest.raises(ToolFailed) as refused:
            await call("claim_everything", agent="lead")
    assert refused.value.code == "not_found"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _show(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}"[:80] for k, v in args.items())


@pytest.mark.anyio
async def test_every_resource_answers_hostile_ids_with_content_or_a_coded_error(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        pools = Pools()
        await seed(call, pools)
        templates = [t.uri_template for t in (await call.client.list_resource_templates()).resource_templates]
        assert templates and all(t.count("{") == 1 and t.endswith("}") for t in templates), templates
        ids = [*AGENTS, *pools.ids["thread_id"][:3], *(s for s in HOSTILE_TEXT if _encodable(s) and len(s) < 5_000)]
        answered = Counter()
        for template in templates:
            for value in ids:
                uri = template.split("{")[0] + quote(value, safe="")  # every template ends in its one {id}
                try:
                    json.loads(await call.resource(uri))
                    answered["ok"] += 1
                except MCPError as error:
                    message = error.error.message
                    assert message.split(":", 1)[0] in SPEC_CODES or message.startswith("Unknown resource"), (
                        f"{uri[:80]}: {message[:200]}"
                    )
                    answered[message.split(":", 1)[0]] += 1
    assert answered["ok"] > 0 and answered["invalid"] > 0 and answered["not_found"] > 0, answered
