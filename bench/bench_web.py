"""Dashboard figures: commit in another process -> change on the page (p50, p95), and the page's weight.

`teamroom web` runs as its own process; this script commits sends through tools/ on the same store file
and a headless chromium (Playwright) notes when each one shows up on the page.
Run: .venv/bin/python bench/bench_web.py [--changes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.async_api import async_playwright

from teamroom.store import SQLiteStore
from teamroom.tools import agents, messages

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
WATCH = """n => new Promise(done => {
  const seen = () => [...document.querySelectorAll('#threads .body')].some(b => b.textContent === 'bench-' + n);
  const obs = new MutationObserver(() => { if (seen()) { obs.disconnect(); done(Date.now()); } });
  obs.observe(document.body, {childList: true, subtree: true});
})"""


async def main(changes: int) -> None:
    db = Path(tempfile.mkdtemp()) / "bench.db"
    store = SQLiteStore(db)
    await store.open()
    for name in ("lead", "builder", "human"):
        await agents.register(store, name)
    web = subprocess.Popen([sys.executable, "-m", "teamroom", "web", "--port", "0", "--db", str(db)],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    url = re.search(r"http://\S+", web.stdout.readline()).group(0)
    weight: dict[str, int] = {}
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            page = await browser.new_page()

            async def note(response):
                if response.request.resource_type in ("document", "stylesheet", "script"):
                    weight[response.url] = len(await response.body())

            page.on("response", note)
            await page.goto(url)
            await page.wait_for_selector("#live[data-state=live]")
            lags = []
            for i in range(changes):
                seen = asyncio.ensure_future(page.evaluate(WATCH, i))
                await asyncio.sleep(0.05)  # the observer is in place
                await messages.send(store, "lead", "builder", f"bench-{i}")
                committed = time.time() * 1000
                lags.append(await seen - committed)
            await browser.close()
    finally:
        web.terminate()
        web.wait(10)
        await store.close()
    lags.sort()
    p95 = lags[min(len(lags) - 1, round(0.95 * (len(lags) - 1)))]
    print(f"commit -> page: p50 {statistics.median(lags):.1f} ms, p95 {p95:.1f} ms over {changes} changes")
    print(f"page weight: {sum(weight.values()):,} bytes (" + ", ".join(
        f"{u.rsplit('/', 1)[-1] or 'html'} {n:,}" for u, n in weight.items()) + ")")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=30)
    asyncio.run(main(parser.parse_args().changes))
