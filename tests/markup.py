"""How Discord reads spoiler tags, for tests: `||` pairs, skipping backslash escapes."""


def spoiler_segments(text: str) -> tuple[list[str], list[str]]:
    """(outside, inside) pieces of `text`; raises AssertionError on an unclosed tag."""
    outside, inside = [], []
    current: list[str] = []
    in_spoiler = False
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
        elif text.startswith("||", i):
            (inside if in_spoiler else outside).append("".join(current))
            current = []
            in_spoiler = not in_spoiler
            i += 2
        else:
            current.append(text[i])
            i += 1
    assert not in_spoiler, f"unclosed spoiler tag in {text!r}"
    outside.append("".join(current))
    return outside, inside


def message_strings(message: dict) -> list[tuple[str, str]]:
    """Every (place, text) of a message payload that Discord renders."""
    out = [("content", message.get("content") or "")]
    for embed in message.get("embeds", []):
        out.append(("title", embed.get("title", "")))
        out.append(("description", embed.get("description", "")))
        out.append(("footer", embed.get("footer", {}).get("text", "")))
        for field in embed.get("fields", []):
            out.append(("field name", field["name"]))
            out.append(("field value", field["value"]))
    return out


def assert_within_discord_limits(message: dict) -> None:
    assert len(message.get("content") or "") <= 2000
    embeds = message.get("embeds", [])
    assert len(embeds) <= 10
    assert message.get("content") or embeds, "Discord refuses an empty message"
    total = 0
    for embed in embeds:
        assert len(embed.get("title", "")) <= 256
        assert len(embed.get("description", "")) <= 4096
        assert len(embed.get("footer", {}).get("text", "")) <= 2048
        fields = embed.get("fields", [])
        assert len(fields) <= 25
        for field in fields:
            assert 0 < len(field["name"]) <= 256
            assert 0 < len(field["value"]) <= 1024
        total += sum(
            len(s) for place, s in message_strings({"embeds": [embed]}) if place != "content"
        )
    assert total <= 6000
