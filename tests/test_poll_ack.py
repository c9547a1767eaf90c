"""poll(ack=[...]): the receipts handled are acked and the next messages leased in one call and one transaction."""

from __future__ import annotations

import anyio
import pytest

from tests.conftest import ToolFailed, in_process


async def _two(call) -> None:
    await call("register", agent="lead")
    await call("register", agent="worker")


@pytest.mark.asyncio
async def test_poll_acks_what_was_handled_and_leases_the_next_in_one_call(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _two(call)
        first = await call("send", agent="lead", to="worker", body="one")
        await call("send", agent="lead", to="worker", body="two")
        got = await call("poll", agent="worker", limit=1)
        assert [m["body"] for m in got["messages"]] == ["one"] and got["acked"] == 0
        nxt = await call("poll", agent="worker", limit=1, ack=[got["messages"][0]["receipt"]])
        assert nxt["acked"] == 1 and [m["body"] for m in nxt["messages"]] == ["two"]
        thread = await call("thread", agent="lead", thread_id=first["thread_id"])
        assert thread["messages"][0]["deliveries"][0]["state"] == "acked"
        clock.advance(3600)  # every lease has lapsed: only the unacked "two" comes back
        assert [m["body"] for m in (await call("poll", agent="worker"))["messages"]] == ["two"]


@pytest.mark.asyncio
async def test_the_ack_and_the_lease_are_one_transaction_in_the_audit_log(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _two(call)
        await call("send", agent="lead", to="worker", body="one")
        await call("send", agent="lead", to="worker", body="two")
        receipt = (await call("poll", agent="worker", limit=1))["messages"][0]["receipt"]
        await call("poll", agent="worker", ack=[receipt])
        from teamroom.store import SQLiteStore

        store = SQLiteStore(db_path, clock=clock)
        await store.open()
        try:
            events = (await store.events(-1, 2, "worker", None)).events
        finally:
            await store.close()
        assert [(e.kind, e.subject) for e in events] == [("ack", "m1"), ("lease", "m2")]
        assert events[0].at == events[1].at and events[1].id == events[0].id + 1


@pytest.mark.asyncio
async def test_a_refused_receipt_acks_nothing_and_leases_nothing(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _two(call)
        await call("send", agent="lead", to="worker", body="one")
        await call("send", agent="lead", to="worker", body="two")
        good = (await call("poll", agent="worker", limit=1))["messages"][0]["receipt"]
        for bad, code in (("r999.abc", "not_found"), (good[:-2] + "zz", "lease_expired")):
            with pytest.raises(ToolFailed) as err:
                await call("poll", agent="worker", ack=[good, bad])
            assert err.value.code == code, err.value.text
        inbox = await call("thread", agent="lead", thread_id="m2")
        assert inbox["messages"][0]["deliveries"][0] == {"to": "worker", "state": "queued", "attempt": 0}
        assert (await call("ack", agent="worker", receipts=[good]))["acked"] == 1, "the good receipt still acks"


@pytest.mark.asyncio
async def test_an_empty_ack_list_is_a_plain_poll_and_a_malformed_one_is_invalid(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _two(call)
        await call("send", agent="lead", to="worker", body="one")
        assert (await call("poll", agent="worker", ack=[]))["acked"] == 0
        with pytest.raises(ToolFailed) as err:
            await call("poll", agent="worker", ack=["r1.x\n"])
        assert err.value.code == "invalid" and "ack" in err.value.text


@pytest.mark.asyncio
async def test_a_waiting_poll_acks_before_it_waits(db_path):
    async with in_process(db_path) as call:
        await _two(call)
        await call("send", agent="lead", to="worker", body="one")
        receipt = (await call("poll", agent="worker"))["messages"][0]["receipt"]
        got: dict = {}

        async def wait_for_next() -> None:
            got.update(await call("poll", agent="worker", ack=[receipt], wait_seconds=30))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_for_next)
                while (await call("thread", agent="lead", thread_id="m1"))["messages"][0]["deliveries"][0][
                    "state"
                ] != "acked":
                    await anyio.sleep(0.01)  # the ack is committed while the poll still waits
                assert not got
                await call("send", agent="lead", to="worker", body="two")
        assert got["acked"] == 1 and [m["body"] for m in got["messages"]] == ["two"]


@pytest.mark.anyio  # on the session's shared servers, which live in anyio's runner
@pytest.mark.processes
async def test_a_worker_in_another_process_handles_each_message_in_one_call(team):
    lead, worker = team.acting("lead", "worker")
    await lead("register")
    await worker("register")
    sent = [await lead("send", to=worker.agent, body=f"job {i}") for i in range(5)]
    handled, calls, receipts = [], 0, []
    with anyio.fail_after(60):
        while len(handled) < 5:
            got = await worker("poll", limit=1, ack=receipts, wait_seconds=5)
            calls += 1
            receipts = [m["receipt"] for m in got["messages"]]
            handled += [m["body"] for m in got["messages"]]
        final = await worker("poll", ack=receipts)
    assert handled == [f"job {i}" for i in range(5)] and calls == 5
    assert final == {"messages": [], "acked": 1}
    for message in sent:
        thread = await lead("thread", thread_id=message["thread_id"])
        assert thread["messages"][0]["deliveries"][0]["state"] == "acked"
