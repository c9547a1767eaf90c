"""Names a human gives the CLI, checked: a typo is a clear ``not_found`` listing what exists, never an empty table."""

from __future__ import annotations

from teamroom.errors import NotFound
from teamroom.schemas.common import SYSTEM_AGENT
from teamroom.store import Store

PARKED = "handoff:"  # the holder of locks transferred with a handoff and not yet resumed


async def check_names(
    store: Store, *, agents: tuple[str | None, ...] = (), holder: str | None = None, scope: str | None = None
) -> None:
    """Raise `NotFound`, naming what exists, for an agent, lock holder or board scope the store does not know."""
    known = await store.known_names()
    names = set(known["agents"]) | {SYSTEM_AGENT}
    for name in (*agents, None if holder is None or holder.startswith(PARKED) else holder):
        if name is not None and name not in names:
            listed = ", ".join(known["agents"]) or "none yet"
            raise NotFound(f"no agent named {name!r}; known agents: {listed}")
    if scope is not None and scope != "main" and scope not in known["scopes"]:
        listed = ", ".join(known["scopes"]) or "none yet (the first post_finding opens one)"
        raise NotFound(f"no board scope {scope!r}; scopes: {listed}")
