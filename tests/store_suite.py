"""Store tests every backend must pass; each backend's test module imports them with
its own `store` fixture (a fresh, empty store) and `reopen` (a coroutine function that
opens the same database anew)."""

import asyncio
import datetime as dt

from bot.store import AskRecord, Vote

__all__ = [
    "test_a_dump_loads_back_into_the_same_contents",
    "test_choices_survive_reopening",
    "test_forty_simultaneous_toggles_are_all_kept",
    "test_off_is_the_default_and_forgets_the_member",
    "test_one_vote_per_member_per_answer_which_they_can_change",
    "test_purging_removes_only_what_is_older_than_the_cutoff",
    "test_spoiler_channels_are_per_server_and_reach_threads",
    "test_the_report_lists_unanswered_questions_and_answers_voted_down",
]

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


async def member(store, user_id: int) -> bool:
    return (await store.spoiler_setting(user_id, None, (0, 0))).member


async def test_choices_survive_reopening(store, reopen):
    assert not await member(store, 1)
    await store.set_spoilers(1, True)
    await store.set_spoilers(2, True)
    await store.set_spoilers(2, False)
    again = await reopen()
    assert await member(again, 1) and not await member(again, 2)
    await again.close()


async def test_off_is_the_default_and_forgets_the_member(store):
    await store.set_spoilers(5, True)
    await store.set_spoilers(5, False)
    assert (await store.dump()).spoilers_on == ()


async def test_forty_simultaneous_toggles_are_all_kept(store):
    members = range(1000, 1040)
    await asyncio.gather(*(store.set_spoilers(m, True) for m in members))
    await asyncio.gather(*(store.set_spoilers(m, False) for m in members if m % 3 == 0))
    settings = await asyncio.gather(*(member(store, m) for m in members))
    assert settings == [m % 3 != 0 for m in members]


async def test_spoiler_channels_are_per_server_and_reach_threads(store):
    await store.set_spoiler_channel(1, 10, True)
    await store.set_spoiler_channel(1, 11, True)
    await store.set_spoiler_channel(1, 11, False)
    await store.set_spoiler_channel(1, 10, True)  # twice on is still on
    assert await store.spoiler_channels(1) == (10,)
    assert await store.spoiler_channels(2) == ()
    assert (await store.spoiler_setting(7, 1, (10, 10))).channel
    assert (await store.spoiler_setting(7, 1, (99, 10))).channel  # a thread in channel 10
    assert not (await store.spoiler_setting(7, 2, (10, 10))).channel  # another server
    assert not (await store.spoiler_setting(7, None, (10, 10))).channel  # a DM


async def test_one_vote_per_member_per_answer_which_they_can_change(store):
    await store.record_asks([AskRecord(1, NOW, "who directed it", False, ("a#1", "b#2"))])
    for vote in (-1, -1, 1, -1):
        await store.record_vote(Vote(1, "member-a", vote, NOW))
    await store.record_vote(Vote(1, "member-b", 1, NOW))
    report = await store.report(NOW - dt.timedelta(days=1))
    assert (report.up, report.down) == (1, 1)
    [answer] = report.voted_down
    assert answer.question == "who directed it" and answer.passages == ("a#1", "b#2")
    assert (answer.down, answer.up) == (1, 1)


async def test_the_report_lists_unanswered_questions_and_answers_voted_down(store):
    asks = [
        AskRecord(10, NOW, "is it on netflix", True, ()),
        AskRecord(11, NOW, "Is it on Netflix", True, ()),
        AskRecord(12, NOW, "dub or sub", True, ()),
        AskRecord(13, NOW, "who voices fujino", False, ("c#3",)),
        AskRecord(14, NOW - dt.timedelta(days=40), "an old one", True, ()),
    ]
    await store.record_asks(asks)
    await store.record_vote(Vote(13, "k", -1, NOW))
    report = await store.report(NOW - dt.timedelta(days=30))
    assert (report.asked, report.unanswered) == (4, 3)
    assert [(q.question.lower(), q.times) for q in report.top_unanswered] == [
        ("is it on netflix", 2),
        ("dub or sub", 1),
    ]
    assert [a.question for a in report.voted_down] == ["who voices fujino"]


async def test_purging_removes_only_what_is_older_than_the_cutoff(store):
    old, new = NOW - dt.timedelta(days=91), NOW - dt.timedelta(days=1)
    await store.record_asks(
        [AskRecord(1, old, "old", True, ()), AskRecord(2, new, "new", True, ())]
    )
    await store.record_vote(Vote(1, "k", 1, old))
    await store.record_vote(Vote(2, "k", 1, new))
    await store.record_vote(Vote(1, "late", -1, new))  # a recent vote on an old question
    assert await store.purge(NOW - dt.timedelta(days=90)) == 3
    dump = await store.dump()
    assert [a.question for a in dump.asks] == ["new"] and [v.ask_id for v in dump.votes] == [2]


async def test_a_dump_loads_back_into_the_same_contents(store):
    await store.set_spoilers(3, True)
    await store.set_spoiler_channel(1, 10, True)
    await store.record_asks([AskRecord(1, NOW, "q", False, ("a#1",))])
    await store.record_vote(Vote(1, "k", -1, NOW))
    dump = await store.dump()
    await store.load(dump)
    assert await store.dump() == dump
    assert dump.asks[0].asked_at == NOW
