"""The dashboard as a Starlette app: the page, its live stream, its static files and the human's actions.

`create_app` takes an open store and owns nothing else, so it can run alone (`teamroom web`) or be
mounted under another Starlette app (the team server's ``/``, behind its tokens). Every URL the
page uses is relative (``act/send``, ``static/...``), so it works wherever it is mounted.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from importlib import resources
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from teamroom.config import Settings
from teamroom.errors import TeamroomError
from teamroom.schemas.board import BOARD_KINDS
from teamroom.schemas.common import MESSAGE_KINDS, PRIORITIES
from teamroom.store import Store
from teamroom.tools import messages as message_tools
from teamroom.web import actions
from teamroom.web.feed import Feed, Update
from teamroom.web.view import View

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
FORM_BYTES = 200 * 1024  # a 64 KiB body as UTF-8, percent-encoded, fits
KEEPALIVE_S = 15.0
PAGE_EVENTS = 100
# Nothing but this server: no other host for scripts, styles, images, fonts, frames or connections.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
        " font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class Guard:
    """Refuses requests for another host name (DNS rebinding) and adds the security headers to every answer."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] | None = None) -> None:
        self.app = app
        any_host = allowed_hosts is not None and "*" in allowed_hosts
        self.allowed = None if any_host else set(allowed_hosts or LOOPBACK_HOSTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = Request(scope).url.hostname or ""
        if self.allowed is not None and host.strip("[]") not in self.allowed:
            refusal = PlainTextResponse(
                f"forbidden: this dashboard answers only for {', '.join(sorted(self.allowed))}; open it at"
                " http://127.0.0.1:PORT/",
                status_code=403,
            )
            await refusal(scope, receive, send)
            return

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
            await send(message)

        await self.app(scope, receive, with_headers)


def cross_site(request: Request) -> str | None:
    """Why a POST must be refused as coming from another site, or None when it comes from the page itself."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"a {site} request"
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin != own:
            return f"a request from {origin}"
    return None


def may_force(request: Request) -> bool:
    """Whether this request may take another agent's lock (the operator's force release).

    True for the local app: `teamroom web` listens on 127.0.0.1 only and is run by the machine's human,
    the same person who may run `teamroom locks release RESOURCE --force`. A server with tokens passes
    its own check (admin tokens only) as ``create_app(..., may_force=...)``.
    """
    return True


def create_app(
    store: Store,
    *,
    settings: Settings,
    actor: str = "human",
    allowed_hosts: Sequence[str] | None = None,
    refresh_s: float | None = None,
    may_force: Callable[[Request], bool] = may_force,
) -> Starlette:
    """The dashboard over an open ``store``; the caller opens and closes the store (and ``app.state.feed``).

    ``allowed_hosts``: the host names it answers for (default loopback only; ``["*"]`` for any, when
    something in front of it checks). ``actor`` is who the human acts as. ``may_force``: whether a
    request may force-release another holder's lock (the page hides the button where it may not).
    """
    csrf = secrets.token_urlsafe(32)  # per process: a page from this process carries it, another site cannot
    view = View(store, csrf=csrf, actor=actor)
    feed = Feed(store, view) if refresh_s is None else Feed(store, view, refresh_s=refresh_s)

    def root(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/") + "/"

    notices: dict[str, tuple[str, bool]] = {}  # outcomes of forms posted without the script, shown once

    async def render_page(request: Request, flash: str | None = None, ok: bool = True) -> Response:
        recent = (await message_tools.events(store, limit=PAGE_EVENTS)).events  # before the panels: those are newer
        html = view.page(
            panels=await view.panels(None),
            events=list(reversed(view.event_rows(recent))),
            last_id=recent[-1].id if recent else 0,
            store_path=str(settings.db_path),
            flash=flash,
            ok=ok,
            may_force=may_force(request),
            message_kinds=[k for k in MESSAGE_KINDS if k not in ("delivery_failed", "handoff")],
            board_kinds=BOARD_KINDS,
            priorities=list(PRIORITIES),
        )
        return HTMLResponse(html)

    async def page(request: Request) -> Response:
        notice = notices.pop(request.query_params.get("notice", ""), None)
        return await render_page(request, *notice) if notice else await render_page(request)

    async def stream(request: Request) -> Response:
        raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # isdigit alone takes "١" and "²"
            return PlainTextResponse("invalid: after must be the id of the last event the page has", 400)
        return StreamingResponse(
            _events(feed, int(raw)),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def act(request: Request) -> Response:
        wants_json = "application/json" in request.headers.get("accept", "")
        why = cross_site(request)
        if why is not None:
            return _answer(wants_json, 403, f"forbidden: {why} may not act here; use the dashboard page itself")
        body = await _body(request)
        if body is None:
            return _answer(wants_json, 413, f"too_large: a form is at most {FORM_BYTES} bytes; send less")
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20))
        except (UnicodeDecodeError, ValueError):
            return _answer(wants_json, 400, "invalid: the form is not UTF-8 form data; post it from the page")
        if not hmac.compare_digest(fields.pop("csrf", ""), csrf):
            return _answer(
                wants_json, 403, "forbidden: the form's token is missing or from another run; reload the page"
            )
        try:
            message, ok, status = (
                await actions.run(request.path_params["name"], store, actor, fields, may_force=may_force(request))
            ), True, 200
        except TeamroomError as exc:
            message, ok, status = str(exc), False, 400
        except Exception:
            log.exception("dashboard action %s failed", request.path_params["name"])
            message, ok, status = "internal: the dashboard failed on that action; its log has the details", False, 500
        if wants_json:
            return JSONResponse({"ok": ok, "message": message}, status_code=status)
        # A form posted without the page's script: back to the page, which shows the outcome once.
        key = secrets.token_urlsafe(8)
        notices[key] = (message, ok)
        while len(notices) > 100:
            notices.pop(next(iter(notices)))
        return RedirectResponse(f"{root(request)}?notice={key}", status_code=303)

    async def failed(request: Request, exc: Exception) -> Response:
        log.error("dashboard request %s failed", request.url.path, exc_info=exc)
        return PlainTextResponse("internal: the dashboard failed on that request; its log has the details", 500)

    async def missing(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"not_found: nothing at {request.url.path}; the dashboard is at {root(request)}", 404)

    static = StaticFiles(directory=str(resources.files("teamroom.web") / "static"))
    app = Starlette(
        routes=[
            Route("/", page),
            Route("/stream", stream),
            Route("/act/{name}", act, methods=["POST"]),
            Mount("/static", static, name="static"),
        ],
        middleware=[Middleware(Guard, allowed_hosts=allowed_hosts)],
        exception_handlers={404: missing, 405: missing, Exception: failed},
    )
    app.state.feed = feed
    app.state.view = view
    app.state.csrf = csrf
    return app


def _answer(wants_json: bool, status: int, message: str) -> Response:
    if wants_json:
        return JSONResponse({"ok": False, "message": message}, status_code=status)
    return PlainTextResponse(message, status_code=status)


async def _body(request: Request) -> bytes | None:
    """The request body, or None past FORM_BYTES (read no further than that)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_BYTES:
            return None
    return body


def sse(update: Update) -> str:
    """One server-sent event carrying an update; its id lets a reconnecting page say what it has."""
    data = json.dumps(
        {"id": update.id, "panels": update.panels, "events": update.events, "status": update.status},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return f"id: {update.id}\nevent: update\ndata: {data}\n\n"


async def _events(feed: Feed, after: int):
    async with feed.subscribe(after) as (first, queue):
        yield "retry: 1000\n\n"
        if first:
            yield sse(first)
        while True:
            try:
                update = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keep-alive\n\n"  # finds a page that went away, through proxies that close idle streams
                continue
            if update is None:
                return  # dropped (fell behind) or closing: the browser reconnects and catches up
            yield sse(update)
