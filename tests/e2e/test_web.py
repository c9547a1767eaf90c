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
from teamroom.store.base import ManualClock, SystemClock
from teamroom.tools import agents as agent_tools
from teamroom.tools import messages as message_tools
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
async def dashboard(db: Path, clock=None, **options) -> AsyncIterator[tuple[str, object]]:
    """`create_app` served by uvicorn in this process on a free loopback port; yields its URL and the app."""
    store = SQLiteStore(db, clock=clock)
    await store.open()
    await make_known(store, "human")
    app = create_app(store, settings=Settings(db_path=db), **options)
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


async def open_page(chromium, url: str, requests: list[str], **options):
    page = await chromium.new_page(**options)
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
        await answer.focus()  # keyboard only from here: type, then Ctrl+Enter sends (Enter does too)
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


FOCUS_SHOWN = """() => { const s = getComputedStyle(document.activeElement);
  return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0; }"""


@pytest.mark.asyncio
async def test_a_stale_lock_is_force_released_from_the_page_after_a_confirm_and_logged_as_by_human(db_path):
    clock = ManualClock(SystemClock().now_ms())
    async with served(db_path, agent="builder-1") as builder:
        await builder("register", role="builder")
        token = (await builder("claim_lock", resources=["src/db/**"], ttl_seconds=3600))["locks"][0]["token"]
        async with dashboard(db_path, clock) as (url, app), browser() as chromium:
            clock.advance(3 * 60)  # builder-1 has not been heard from for 3 minutes: stale
            page = await open_page(chromium, url, [])
            row = page.locator('tr.lock[data-resource="src/db/**"]')
            assert "stale" in await row.inner_text()
            confirm = row.locator("details.confirm")
            await confirm.locator("summary").click()  # the first click only asks
            assert await page.locator("#notice.ok, #notice.error").count() == 0
            await confirm.get_by_role("button", name="Yes, take it").click()
            await page.locator("#notice.ok").wait_for(timeout=15_000)
            said = await page.inner_text("#notice")
            assert said.startswith(f"force-released src/db/** (token {token}) from builder-1")
            await row.wait_for(state="detached", timeout=15_000)
            assert (await builder("locks"))["locks"] == []
            store = app.state.view.store
            last = [e for e in (await message_tools.events(store, limit=20)).events if e.kind == "lock_release"]
            assert [(e.agent, e.data["forced"], e.data["by"]) for e in last] == [("builder-1", True, "human")]
            await page.locator("#events .event", has_text="lock_release").first.wait_for(timeout=15_000)


@pytest.mark.asyncio
async def test_where_may_force_says_no_the_button_is_hidden_and_a_forced_post_is_refused(db_path):
    clock = ManualClock(SystemClock().now_ms())
    async with served(db_path, agent="builder-1") as builder:
        await builder("claim_lock", resources=["src/db/**"], ttl_seconds=3600)
        async with dashboard(db_path, clock, may_force=lambda request: False) as (url, app), browser() as chromium:
            clock.advance(3 * 60)
            page = await open_page(chromium, url, [])
            assert not await page.locator('tr.lock details.confirm').is_visible()
            form = f"csrf={app.state.csrf}&resource=src/db/**&holder=builder-1&force=yes".encode()
            kind = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
            status, body = await asyncio.to_thread(post, url + "act/release", form, kind)
            assert status == 400 and '"forbidden: ' in body and "admin" in body
            assert len((await builder("locks"))["locks"]) == 1  # nothing was changed


@pytest.mark.asyncio
async def test_on_a_phone_nothing_overflows_and_the_panels_show(db_path):
    async with served(db_path, agent="lead") as lead, served(db_path, agent="builder-with-a-long-name-1") as builder:
        await builder("register", role="builder")
        await builder("heartbeat", status="working", task="a task with a fairly long description to wrap")
        await builder("claim_lock", resources=["src/a/very/long/path/that/does/not/fit/on/a/phone/screen/**"])
        await lead("send", to="builder-with-a-long-name-1", subject="s", body="x" * 300)
        await lead("post_finding", title="t", body="averyveryverylongwordwithoutanyspaces" * 4, kind="decision")
        async with dashboard(db_path) as (url, _), browser() as chromium:
            page = await open_page(chromium, url, [], viewport={"width": 390, "height": 844}, is_mobile=True)
            width = await page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert width[0] <= width[1], f"the page is {width[0]} px wide on a {width[1]} px screen"
            for panel in ("#agents", "#threads", "#locks", "#board", "#tasks", "#log"):
                box = await page.locator(panel).bounding_box()
                assert await page.locator(panel).is_visible() and box["x"] >= 0 and box["x"] + box["width"] <= 390
            assert await page.locator('[data-agent="builder-with-a-long-name-1"]').is_visible()


@pytest.mark.asyncio
async def test_tab_reaches_the_reply_box_with_focus_shown_and_enter_sends(db_path):
    async with dashboard(db_path) as (url, _), served(db_path, agent="lead") as lead, browser() as chromium:
        sent = await lead("send", to="human", subject="status", body="How is it going?")
        page = await open_page(chromium, url, [])
        reply = page.locator("form.reply textarea").first
        await reply.wait_for(timeout=15_000)
        target = await reply.get_attribute("id")
        stops = []
        for _ in range(60):
            await page.keyboard.press("Tab")
            here = await page.evaluate("document.activeElement.id || document.activeElement.tagName")
            stops.append(here)
            assert await page.evaluate(FOCUS_SHOWN), f"no visible focus on {here}"
            if here == target:
                break
        assert stops[-1] == target, f"Tab never reached the reply box: {stops}"
        await page.keyboard.type("Going well")
        await page.keyboard.press("Enter")
        await page.locator("#notice.ok").wait_for(timeout=15_000)
        got = (await lead("poll", wait_seconds=10))["messages"]
        assert [(m["from"], m["body"], m["reply_to"]) for m in got] == [("human", "Going well", sent["message_id"])]


@pytest.mark.asyncio
async def test_each_message_shows_where_each_delivery_stands(db_path):
    clock = ManualClock(SystemClock().now_ms())
    async with (
        served(db_path, agent="lead") as lead,
        served(db_path, agent="ann") as ann,
        served(db_path, agent="bob") as bob,
        served(db_path, agent="cat") as cat,
    ):
        for agent in (ann, bob, cat):
            await agent("register")
        store = SQLiteStore(db_path, clock=clock)
        await store.open()
        try:
            await agent_tools.register(store, "dan")
            sent = await lead("send", to=["ann", "bob", "cat", "dan"], body="four ways", max_attempts=1)
            receipt = (await bob("poll", wait_seconds=5))["messages"][0]["receipt"]
            await bob("ack", receipts=[receipt])
            await cat("poll", wait_seconds=5)  # leased, not acked
            clock.ms = SystemClock().now_ms() + 1000  # after the send, whose clock was the lead's
            leased = (await message_tools.poll(store, "dan", lease_seconds=1)).messages
            assert [m.message_id for m in leased] == [sent["message_id"]]
            clock.advance(5)
            await message_tools.poll(store, "dan")  # its one attempt lapsed: dead
        finally:
            await store.close()
        async with dashboard(db_path) as (url, _), browser() as chromium:
            page = await open_page(chromium, url, [])
            message = page.locator(f'[data-message="{sent["message_id"]}"]')
            states = {}
            for to in await message.locator(".head .to").all():
                name, state = (await to.inner_text()).split()[:2]
                states[name] = state
            assert states == {"ann": "queued", "bob": "acked", "cat": "leased", "dan": "dead"}
