"""The dashboard in a real browser: Playwright driving Debian's chromium against `teamroom web` on a real store."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
import uvicorn

from teamroom.config import Settings
from teamroom.store import SQLiteStore
from teamroom.web import create_app
from teamroom.web.run import make_known
from tests.procs import served

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is missing: apt-get install -y chromium"),
]
playwright_api = pytest.importorskip("playwright.async_api")


@asynccontextmanager
async def dashboard(db: Path) -> AsyncIterator[tuple[str, object]]:
    """`create_app` served by uvicorn in this process on a free loopback port; yields its URL and the app."""
    store = SQLiteStore(db)
    await store.open()
    await make_known(store, "human")
    app = create_app(store, settings=Settings(db_path=db))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/", app
    finally:
        await app.state.feed.close()
        server.should_exit = True
        await task
        sock.close()
        await store.close()


@asynccontextmanager
async def browser() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def open_page(chromium, url: str, requests: list[str]):
    page = await chromium.new_page()
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(url)
    await page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    return page


def post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.mark.asyncio
async def test_the_page_shows_what_agents_did_through_mcp_and_a_new_message_arrives_without_a_reload(db_path):
    requests: list[str] = []
    async with served(db_path, agent="lead") as lead, served(db_path, agent="builder-1") as builder:
        await lead("register", role="lead")
        await builder("register", role="builder")
        await builder("heartbeat", status="working", task="fix refresh tokens")
        token = (await builder("claim_lock", resources=["src/auth/**"], reason="refresh fix"))["locks"][0]["token"]
        await lead("send", to="builder-1", subject="refresh bug", body="Please fix the refresh bug")
        await lead("post_finding", title="auth", body="We use JWT", kind="decision")
        async with dashboard(db_path) as (url, app), browser() as chromium:
            page = await open_page(chromium, url, requests)
            agents = page.locator('[data-agent="builder-1"]')
            assert "working" in await agents.inner_text() and "fix refresh tokens" in await agents.inner_text()
            assert "src/auth/**" in await agents.inner_text()
            lock = await page.locator('tr.lock[data-resource="src/auth/**"]').inner_text()
            assert "builder-1" in lock and str(token) in lock
            thread = await page.locator("#threads").inner_text()
            assert "Please fix the refresh bug" in thread and "queued" in thread
            assert await page.locator("#board .entry.k-decision .badge.decision").count() == 1

            await page.evaluate("window.notReloaded = true")
            await lead("send", to="builder-1", body="and the logout one too", reply_to="m1")
            await page.locator("#threads .msg", has_text="and the logout one too").wait_for(timeout=15_000)
            await page.locator("#events .event .ekind", has_text="send").first.wait_for(timeout=15_000)
            assert await page.evaluate("window.notReloaded === true"), "the page was not reloaded"
            await open_page(chromium, url, requests)  # a second page shares the one watcher
            assert app.state.feed.watchers_started == 1 and app.state.feed.pages == 2
    hosts = {urlparse(u).hostname for u in requests}
    assert hosts == {"127.0.0.1"}, f"requests left 127.0.0.1: {sorted(set(requests))}"


@pytest.mark.asyncio
async def test_an_answer_typed_in_the_page_reaches_the_agents_poll_from_human(db_path):
    requests: list[str] = []
    async with dashboard(db_path) as (url, _), served(db_path, agent="lead") as lead, browser() as chromium:
        gate = await lead("send", to="human", kind="decision_gate", subject="release", body="Ship on Friday?")
        page = await open_page(chromium, url, requests)
        answer = page.locator("form.answer textarea")
        await answer.wait_for(timeout=15_000)
        await answer.focus()  # keyboard only from here: type, then Ctrl+Enter sends
        await page.keyboard.type("Yes, ship it")
        await page.keyboard.press("Control+Enter")
        await page.locator("#notice.ok").wait_for(timeout=15_000)
        got = (await lead("poll", wait_seconds=10))["messages"]
        assert [(m["from"], m["kind"], m["body"], m["reply_to"]) for m in got] == [
            ("human", "answer", "Yes, ship it", gate["message_id"])
        ]
        await page.locator("#events .event", has_text="human").first.wait_for(timeout=15_000)  # audited
        await page.locator(".answered").wait_for(timeout=15_000)
    assert {urlparse(u).hostname for u in requests} == {"127.0.0.1"}


@pytest.mark.asyncio
async def test_a_bad_send_shows_the_tools_error_and_a_cross_site_post_is_refused(db_path):
    async with dashboard(db_path) as (url, app), browser() as chromium:
        page = await open_page(chromium, url, [])
        await page.keyboard.press("n")
        await page.keyboard.type("nobody")
        await page.fill("#send-body", "hello?")
        await page.click("#compose button[type=submit]")
        await page.locator("#notice.error").wait_for(timeout=15_000)
        text = await page.inner_text("#notice")
        assert text.startswith("not_found: no agent named 'nobody'") and "Traceback" not in text

        form = f"csrf={app.state.csrf}&to=human&body=forged".encode()
        kind = {"Content-Type": "application/x-www-form-urlencoded"}
        status, body = await asyncio.to_thread(
            post, url + "act/send", form, {**kind, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        )
        assert status == 403 and body.startswith("forbidden:")
        status, body = await asyncio.to_thread(post, url + "act/send", b"to=human&body=forged", kind)
        assert status == 403 and "token" in body
        status, _ = await asyncio.to_thread(post, url + "act/send", form, {**kind, "Origin": url.rstrip("/")})
        assert status == 200  # the same request from the page's own origin with its token is accepted (after its 303)
