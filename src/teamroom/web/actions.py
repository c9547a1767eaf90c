"""What a human can do from the page, each through the same tools/ function as the MCP tool (so it is audited).

Each action takes the form's fields (strings) and returns one line saying what happened; a refusal is
the tool's own `TeamroomError` (``code: what to do``), shown on the page as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from teamroom.errors import Forbidden, Invalid, NotFound
from teamroom.store import Store
from teamroom.tools import board as board_tools
from teamroom.tools import locks as lock_tools
from teamroom.tools import messages as message_tools

Form = dict[str, str]
Action = Callable[[Store, str, Form], Awaitable[str]]


def _opt(form: Form, name: str) -> str | None:
    """A field left empty is a parameter left out (the tool's default applies)."""
    value = form.get(name, "").strip()
    return value or None


def _names(value: str | None) -> str | list[str] | None:
    """``a, b`` is a list of names; one name, ``@all`` or ``@ROLE`` stays a string."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


def _sent(result, verb: str = "sent") -> str:
    return f"{verb} {result.message_id} to {', '.join(result.recipients)} in thread {result.thread_id}"


async def send(store: Store, actor: str, form: Form) -> str:
    """A new message (a new thread unless one is named)."""
    result = await message_tools.send(
        store,
        actor,
        _names(_opt(form, "to")),
        form.get("body", ""),
        subject=_opt(form, "subject"),
        kind=_opt(form, "kind"),
        priority=_opt(form, "priority"),
    )
    return _sent(result)


async def reply(store: Store, actor: str, form: Form) -> str:
    """A reply in a thread: to the original's sender unless ``to`` says otherwise."""
    if _opt(form, "reply_to") is None:
        raise Invalid("reply_to is required: reply from a thread's own form")
    result = await message_tools.send(
        store,
        actor,
        _names(_opt(form, "to")),
        form.get("body", ""),
        kind=_opt(form, "kind"),
        reply_to=_opt(form, "reply_to"),
    )
    return _sent(result, "replied")


async def answer(store: Store, actor: str, form: Form) -> str:
    """The answer to a decision_gate: a reply of kind ``answer``, which marks the gate answered."""
    if _opt(form, "reply_to") is None:
        raise Invalid("reply_to is required: answer from the decision's own form")
    result = await message_tools.send(
        store, actor, None, form.get("body", ""), kind="answer", reply_to=_opt(form, "reply_to")
    )
    return _sent(result, "answered with")


async def post(store: Store, actor: str, form: Form) -> str:
    """An entry on the board (a decision only in a scope the actor owns: the tool says so otherwise)."""
    tags = [t.strip() for t in form.get("tags", "").split(",") if t.strip()]
    result = await board_tools.post_finding(
        store,
        actor,
        form.get("body", ""),
        title=_opt(form, "title"),
        scope=_opt(form, "scope"),
        kind=_opt(form, "kind"),
        tags=tags or None,
    )
    return f"posted {result.id} as #{result.seq} in {result.scope}"


async def release(store: Store, actor: str, form: Form, *, may_force: bool = False) -> str:
    """Release a lock: the actor's own through release_lock; another holder's, once confirmed, through the
    operator's verb (`store.force_release`, which `teamroom locks release RESOURCE --force` calls), logged
    as by the actor.
    """
    resource = _opt(form, "resource")
    if resource is None:
        raise Invalid("resource is required: release from the lock's own row")
    found = (await lock_tools.locks(store, None, resource=resource)).locks
    held = [lock for lock in found if lock.resource == resource]
    if not held:
        raise NotFound(f"nobody holds {resource!r} any more (it was released or expired)")
    holder = held[0].holder
    if holder == actor:
        released = (await lock_tools.release_lock(store, actor, [resource])).released
        return f"released {', '.join(released)}"
    if not may_force:
        raise Forbidden(
            f"{resource!r} is held by {holder}: only an admin may take another agent's lock; ask {holder} to"
            f" release_lock, or wait until it expires ({held[0].expires_at})"
        )
    if _opt(form, "force") != "yes":
        raise Invalid(
            f"{resource!r} is held by {holder}: confirm with the row's 'Yes, take it' button; nothing was changed"
        )
    seen = _opt(form, "holder")
    if seen is not None and seen != holder:
        raise Invalid(f"{resource!r} is now held by {holder}, not {seen}; nothing was changed; look again")
    result = await store.force_release(actor, resource, holder)
    return "; ".join(
        f"force-released {lock.resource} (token {lock.token}) from {lock.holder}"
        f"{' (it had expired)' if lock.expired else ''}; logged as by {actor}"
        for lock in result.released
    )


ACTIONS: dict[str, tuple[Action, frozenset[str]]] = {
    "send": (send, frozenset({"to", "subject", "body", "kind", "priority"})),
    "reply": (reply, frozenset({"reply_to", "to", "body", "kind"})),
    "answer": (answer, frozenset({"reply_to", "body"})),
    "post": (post, frozenset({"scope", "kind", "title", "body", "tags"})),
    "release": (release, frozenset({"resource", "holder", "force"})),
}


async def run(name: str, store: Store, actor: str, form: Form, *, may_force: bool = False) -> str:
    """Run action ``name``; an unknown action or field is refused before anything is called."""
    if name not in ACTIONS:
        raise NotFound(f"no action {name!r}; the page's actions are {', '.join(ACTIONS)}")
    action, fields = ACTIONS[name]
    unknown = sorted(set(form) - fields)
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r} for {name}; its fields are {', '.join(sorted(fields))}")
    if action is release:
        return await release(store, actor, form, may_force=may_force)
    return await action(store, actor, form)
