"""The fake must refuse what Discord refuses, or the bot tests could not fail."""

from tests.fake_discord import message_violations

SAFE = {"allowed_mentions": {"parse": []}}


def test_a_good_message_passes():
    assert message_violations({**SAFE, "content": "hi"}) == []


def test_discord_limits_are_enforced():
    assert message_violations({**SAFE, "content": "x" * 2001})
    assert message_violations({**SAFE, "content": ""})
    assert message_violations({**SAFE, "embeds": [{"title": "t" * 257}]})
    assert message_violations(
        {**SAFE, "embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]}
    )
    assert message_violations({**SAFE, "embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]})
    big = {"description": "d" * 4000, "fields": [{"name": "n", "value": "v" * 1000}] * 3}
    assert any("6000" in p for p in message_violations({**SAFE, "embeds": [big]}))


def test_replies_that_could_ping_are_violations():
    assert message_violations({"content": "hi"})
    assert message_violations({"content": "hi", "allowed_mentions": {"parse": ["everyone"]}})
