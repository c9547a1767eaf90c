"""The dashboard's live stream, spoken to in-process over ASGI (the browser tests are in tests/e2e)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from teamroom.config import Settings
from teamroom.store import ManualClock, open_store
from teamroom.web import create_app

pytestmark = pytest.mark.anyio


async def _get(app: Any, path: str, query: str) -> tuple[int, str]:
    """One GET through the app's ASGI interface, by a client that leaves at once: (status, body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    asked = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return asked.pop() if asked else {"type": "http.disconnect"}  # then gone: a stream that began ends

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()


@pytest.mark.parametrize("after", ["\u0661", "\u00b2", "-1", "x"])  # ARABIC-INDIC ONE, SUPERSCRIPT TWO
async def test_a_stream_asked_to_start_after_anything_but_ascii_digits_is_invalid(tmp_path: Path, after: str) -> None:
    async with open_store(tmp_path / "s.db", clock=ManualClock()) as store:
        app = create_app(store, settings=Settings(db_path=tmp_path / "s.db"))
        try:
            status, body = await _get(app, "/stream", "after=" + quote(after))
            assert (status, body.split(":", 1)[0]) == (400, "invalid")
        finally:
            await app.state.feed.close()
