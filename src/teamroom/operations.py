"""The operator's commands (SPEC.md §9): gc, stats, backup, dead letters, redrive, and taking a lock or an
agent away from the team.

Each opens the agents' store and calls one Store verb. What changes is recorded in the audit log as
done by ``human``, the one at the CLI, as ``send --as`` is (``"by": "human"`` in each event).
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from teamroom.config import ENV_RETENTION_DAYS, Settings
from teamroom.console import LIVENESS_STYLE, STATE_STYLE, Out, _styled, store_for, when
from teamroom.errors import Invalid
from teamroom.human import HUMAN
from teamroom.names import check_names
from teamroom.store.base import GC_CLI_PAUSE_RATIO
from teamroom.text import clip
from teamroom.tools import _check

MB = 1_000_000


async def gc(settings: Settings, out: Out, dry_run: bool) -> int:
    """Retention now: what finished over TEAMROOM_RETENTION_DAYS ago goes, old events by way of the archive."""
    async with store_for(settings) as store:
        result = await store.gc(settings.retention_days, by=HUMAN, dry_run=dry_run, pause_ratio=GC_CLI_PAUSE_RATIO)
    if out.json:
        out.data(result)
        return 0
    verb, events = ("would delete", "would archive") if dry_run else ("deleted", "archived")
    out.print(
        f"{verb} {result.deliveries:,} finished deliveries and {result.messages:,} messages; {events} then"
        f" {'delete ' if dry_run else 'deleted '}{result.events:,} audit events"
        + (f" (to {escape(result.archive)})" if result.archive and result.events else "")
    )
    days = f"{result.retention_days:g}"
    out.print(
        Text(
            f"what finished before {result.cutoff[:16].replace('T', ' ')} UTC ({ENV_RETENTION_DAYS}={days});"
            f" {'nothing was changed' if dry_run else f'took {result.seconds:.1f} s'}",
            style="dim",
        )
    )
    return 0


async def stats(settings: Settings, out: Out) -> int:
    async with store_for(settings) as store:
        result = await store.stats()
    if out.json:
        out.data(result)
        return 0
    if result.agents:
        table = Table(title="queues", title_justify="left")
        for column in ("agent", "role", "liveness", "queued", "leased", "dead", "oldest queued", "locks"):
            table.add_column(column, justify="right" if column in ("queued", "leased", "dead", "locks") else "left")
        for a in result.agents:
            table.add_row(
                a.name if a.known else Text(f"{a.name} (forgotten)", style="dim"), a.role or "-",
                _styled(a.liveness, LIVENESS_STYLE), str(a.queued), str(a.leased),
                Text(str(a.dead), style="red" if a.dead else ""), when(a.oldest_queued_at), str(a.locks),
            )  # fmt: skip
        out.print(table)
    else:
        out.print(Text("no agents yet", style="dim"))
    states = Text("deliveries: ")
    for i, (state, n) in enumerate(sorted(result.deliveries.items())):
        states.append(", " if i else "")
        states.append(f"{n:,} {state}", style=STATE_STYLE.get(state, ""))
    out.print(states if result.deliveries else Text("deliveries: none"))
    ev = result.events
    span = f" (e{ev.first_id}-e{ev.last_id}, the oldest {when(ev.oldest_at)})" if ev.count else ""
    out.print(f"messages: {result.messages:,}; live locks: {result.locks:,}; events: {ev.count:,}{span}")
    if result.store is not None:
        size = result.store
        archived = f"; archive {size.archive_bytes / MB:,.1f} MB, events up to e{ev.archived_through}" if (
            ev.archived_through
        ) else ""  # fmt: skip
        out.print(
            Text(
                f"store {size.path}: {size.bytes / MB:,.1f} MB ({size.free_bytes / MB:,.1f} MB free inside){archived}",
                style="dim",
            )
        )
    return 0


async def backup(settings: Settings, out: Out, target: Path) -> int:
    async with store_for(settings) as store:
        written = await store.backup(target)
        archive = store.archive_dir()
    if out.json:
        out.data({"backup": str(written), "bytes": written.stat().st_size})
        return 0
    size = written.stat().st_size / MB
    out.print(f"copied {escape(str(settings.db_path))} to {escape(str(written))} ({size:,.1f} MB)")
    if archive is not None and archive.is_dir():
        out.print(Text(f"the archived audit events are plain files: copy {archive} as it is", style="dim"))
    return 0


DEAD_LIMIT = (1, 10_000)


async def dead(settings: Settings, out: Out, agent: str | None, limit: int) -> int:
    limit = _check.whole("--limit", limit, DEAD_LIMIT)  # before the store: SQLite takes LIMIT -1 for no limit
    async with store_for(settings) as store:
        result = await store.dead_letters(agent, limit)
        if not result.total:
            await check_names(store, agents=(agent,))  # a typo is not_found; a forgotten name with letters is shown
    if out.json:
        out.data(result)
        return 0
    if not result.dead:
        out.print(Text(f"no dead letters{f' for {agent}' if agent else ''}", style="dim"))
        return 0
    table = Table(title=f"dead letters{f' of {agent}' if agent else ''}", title_justify="left")
    for column in ("id", "to", "from", "kind", "subject / reason", "tries", "died"):
        table.add_column(column)
    for d in result.dead:
        table.add_row(
            d.message_id, d.to, d.from_, d.kind, clip(f"{d.subject or '-'}: {d.reason or ''}", 70),
            f"{d.attempts}/{d.max_attempts}", when(d.died_at),
        )  # fmt: skip
    out.print(table)
    more = f"{result.total - len(result.dead):,} more not shown (--limit); " if result.total > len(result.dead) else ""
    out.print(Text(f"{more}teamroom redrive ID (or --all) queues them again, attempts from 0", style="dim"))
    return 0


async def redrive(settings: Settings, out: Out, message_id: str | None, agent: str | None) -> int:
    async with store_for(settings) as store:
        result = await store.redrive(HUMAN, message_id, agent)
        if not result.redriven and not result.skipped:
            await check_names(store, agents=(agent,))
    if out.json:
        out.data(result)
        return 0
    if not result.redriven and not result.skipped:
        out.print(Text(f"no dead letters{f' for {agent}' if agent else ''}: nothing to redrive", style="dim"))
    for r in result.redriven:
        out.print(f"queued again: {r.message_id} -> {escape(r.to)} (it had {r.attempts} attempts)")
    for r in result.skipped:
        out.print(Text(f"skipped: {r.message_id} -> {r.to}: no agent of that name any more", style="yellow"))
    if result.redriven:
        out.print(Text(f"logged as by {HUMAN}; the senders' delivery_failed notices stay", style="dim"))
    return 0


async def release_lock(settings: Settings, out: Out, resource: str, holder: str | None, force: bool) -> int:
    if not force:
        raise Invalid(
            f"releasing a lock for its holder takes --force: teamroom locks release {resource} --force (its"
            " holder is not told; a late write of its own is refused only where the fencing token is checked)"
        )
    async with store_for(settings) as store:
        await check_names(store, holder=holder)
        result = await store.force_release(HUMAN, resource, holder)
    if out.json:
        out.data(result)
        return 0
    for lock in result.released:
        state = " (it had expired)" if lock.expired else ""
        out.print(
            f"released {escape(lock.resource)} ({lock.mode}, token {lock.token}) held by {escape(lock.holder)}{state};"
            f" logged as by {HUMAN}"
        )
    return 0


async def forget(settings: Settings, out: Out, agent: str, force: bool) -> int:
    async with store_for(settings) as store:
        result = await store.forget_agent(HUMAN, agent, force)
    if out.json:
        out.data(result)
        return 0
    out.print(f"forgot {escape(result.agent)}: out of @all and @ROLE; its messages, events and board entries stay")
    if result.dead:
        out.print(f"{result.dead} message(s) waiting for it are dead letters now (their senders were told)")
    if result.released:
        out.print(f"released its locks: {escape(', '.join(result.released))}")
    out.print(Text(f"logged as by {HUMAN}; if {result.agent} calls teamroom again it is known again", style="dim"))
    return 0
