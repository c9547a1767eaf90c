"""claim_lock, release_lock, locks."""

from __future__ import annotations

import time

from teamroom import paths
from teamroom.errors import Invalid
from teamroom.schemas.common import Limits
from teamroom.schemas.locks import ClaimResult, LockMode, LocksResult, ReleaseResult
from teamroom.store import Store
from teamroom.tools import _check

MODES: tuple[str, ...] = LockMode.__args__  # type: ignore[attr-defined]
DEFAULT_TTL_SECONDS = 900


def resource_list(field: str, values: str | list[str] | None) -> list[str]:
    """Normalised, distinct resources, in the order given; at least one, at most the limit."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values:
        raise Invalid(f"{field} must be a non-empty list, e.g. ['src/auth/login.py', 'src/auth/**', 'deploy:prod']")
    if len(values) > Limits.RESOURCES:
        raise Invalid(
            f"{field} has {len(values)} items; the limit is {Limits.RESOURCES}: claim a glob such as 'src/**'"
        )
    return list(dict.fromkeys(paths.normalise(v) for v in values))


async def claim_lock(
    store: Store,
    agent: str | None,
    resources: str | list[str],
    mode: str | None = None,
    ttl_seconds: int | None = None,
    reason: str | None = None,
    wait_seconds: float | None = None,
) -> ClaimResult:
    """Lock every resource or none; with wait_seconds, wait (across processes) for the conflicts to clear."""
    agent = _check.agent_name(agent)
    wanted = resource_list("resources", resources)
    mode = _check.one_of("mode", mode, MODES, "exclusive")
    ttl = _check.whole("ttl_seconds", ttl_seconds, Limits.TTL_SECONDS, DEFAULT_TTL_SECONDS)
    reason = _check.text("reason", reason, Limits.SHORT_TEXT_CHARS)
    wait = float(_check.number_in("wait_seconds", wait_seconds, Limits.WAIT_SECONDS, 0))

    deadline = time.monotonic() + wait
    while True:
        result = await store.claim_lock(agent, wanted, mode, ttl, reason)
        if result.granted or time.monotonic() >= deadline:
            return result
        while True:
            # Take the token before looking, so a release that lands in between still wakes us.
            token = store.change_token()
            clear_in = await store.lock_clear_in(agent, wanted, mode)
            remaining = deadline - time.monotonic()
            if clear_in == 0 or remaining <= 0:
                break  # claim now: it may be granted, and a last try reports the conflicts as they are
            await store.wait_for_change(token, min(remaining, clear_in))


async def release_lock(store: Store, agent: str | None, resources: str | list[str] | None = None) -> ReleaseResult:
    """Release the given resources, or every lock the caller holds; someone else's lock is not_owner."""
    agent = _check.agent_name(agent)
    return await store.release_lock(agent, None if resources is None else resource_list("resources", resources))


async def locks(
    store: Store,
    agent: str | None,
    resource: str | None = None,
    holder: str | None = None,
    limit: int | None = None,
) -> LocksResult:
    """Live locks overlapping ``resource`` (or all), of ``holder`` (or anyone); ``limit`` None lists all."""
    caller = None if agent is None else _check.agent_name(agent)
    resource = None if resource is None else paths.normalise(resource)
    holder = _check.label("holder", holder, 128)
    if limit is not None:
        limit = _check.whole("limit", limit, Limits.LIMIT, Limits.LIMIT[1])
    return await store.locks(caller, resource, holder, limit)
