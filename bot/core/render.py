"""Answer -> the exact Discord message payload, always within Discord's limits.

Corpus text is escaped first (so a `|` in a passage cannot close a spoiler tag),
then truncated on whole escape sequences, then wrapped in `||` tags: no cut can
leave a tag open. Spoiler text only ever goes into field values, where Discord
renders spoiler tags; titles, names and footers never carry it.

This module imports only `discord.utils` for its markdown escaping, which needs
no connection; the CLI and the bot share everything here.
"""

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from discord.utils import escape_markdown

from bot.core.answer import PAGE_SIZE, Answer, Passage
from bot.core.corpus import Corpus

# Discord's limits for the parts this module fills (content stays empty).
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FIELDS_MAX = 25
EMBED_TOTAL_MAX = 6000

DONT_KNOW = "I don't know: none of my sources answers that."
SPOILER_HINT = "Use `/spoilers on` to see them."
SPOILER = "||"
ELLIPSIS = "…"
_ATOM = re.compile(r"\\.|.", re.DOTALL)  # one escaped pair or one character
_LIVE_EMPHASIS = re.compile(r"(\\.)|([|*_~`])", re.DOTALL)  # an escape pair, or a bare mark
_SAFE_URL = re.compile(r"https?://[^\s()<>|\\*_`~\[\]]+")
_ECHO_BUDGET = 700  # the quoted question: 300 characters, each at most two once escaped


class Field(NamedTuple):
    """One passage of an embed (a NamedTuple, as a Passage: several per message)."""

    name: str
    value: str


@dataclass(frozen=True)
class Embed:
    title: str
    description: str
    fields: tuple[Field, ...]
    footer: str

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "rich"}
        if self.title:
            data["title"] = self.title
        if self.description:
            data["description"] = self.description
        if self.fields:
            data["fields"] = [
                {"name": f.name, "value": f.value, "inline": False} for f in self.fields
            ]
        if self.footer:
            data["footer"] = {"text": self.footer}
        return data


@dataclass(frozen=True)
class Message:
    content: str
    embeds: tuple[Embed, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "embeds": [e.to_dict() for e in self.embeds],
            "allowed_mentions": {"parse": []},
        }


@lru_cache(maxsize=4096)
def escape(text: str) -> str:
    """Markdown-escape corpus or member text so nothing in it can open or close markup.

    discord.py escapes a `[text](link)` as a whole by prefixing it, leaving any `||` or
    `**` inside it live; a second pass escapes every emphasis or spoiler character left.
    Cached: the same passages recur across asks, and escaping is half of rendering.
    """
    escaped = escape_markdown(text, ignore_links=False)
    return _LIVE_EMPHASIS.sub(lambda m: m.group(1) or "\\" + m.group(2), escaped)


def truncate(escaped: str, limit: int, *, keep: str = "start") -> str:
    """Shorten escaped text to `limit` characters on whole escape sequences.

    keep="start" drops the end, keep="end" drops the beginning; an ellipsis marks the cut.
    """
    if len(escaped) <= limit:
        return escaped
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit] if limit > 0 else ""
    atoms = _ATOM.findall(escaped)
    if keep == "end":
        atoms.reverse()
    kept: list[str] = []
    size = len(ELLIPSIS)
    for atom in atoms:
        if size + len(atom) > limit:
            break
        kept.append(atom)
        size += len(atom)
    if keep == "end":
        return ELLIPSIS + "".join(reversed(kept))
    return "".join(kept) + ELLIPSIS


def _plain(text: str, limit: int) -> str:
    """Escape and fit one-line text (titles, names, footers)."""
    return truncate(escape(" ".join(text.split())), limit)


def passage_body(passage: Passage, limit: int) -> str:
    """The passage, escaped, its best sentence in bold, spoiler-tagged, within `limit`."""
    text, highlight = passage.chunk.text, passage.highlight
    at = text.find(highlight) if highlight else -1
    if at < 0:
        before, middle, after = "", "", text
    else:
        before, middle, after = text[:at], highlight, text[at + len(highlight) :]
    wrap = 2 * len(SPOILER) if passage.spoiler else 0
    bold = 4 if middle else 0
    budget = limit - wrap - bold
    before, middle, after = escape(before), escape(middle), escape(after)
    # Keep the highlighted sentence whole where possible: trim after it, then before it.
    after = truncate(after, max(0, budget - len(before) - len(middle)))
    before = truncate(before, max(0, budget - len(middle) - len(after)), keep="end")
    middle = truncate(middle, max(0, budget - len(before) - len(after)))
    body = before + (f"**{middle}**" if middle else "") + after
    return f"{SPOILER}{body}{SPOILER}" if passage.spoiler else body


def _link(url: str | None) -> list[str]:
    """A markdown link to `url`, or nothing if it is absent or could break out of the link."""
    return [f"[link](<{url}>)"] if url and _SAFE_URL.fullmatch(url) else []


def citation(passage: Passage) -> str:
    chunk = passage.chunk
    parts = [f"— {escape(chunk.doc.source)}, {escape(chunk.doc.kind)}, {chunk.where}"]
    return " · ".join(parts + _link(chunk.doc.url))


def echo(answer: Answer, limit: int = _ECHO_BUDGET) -> str:
    """The member's question as replies quote it: inside spoiler tags when it could spoil.

    A member's own `||` marks are markup, not words: they are dropped and the whole
    question is tagged instead of showing them escaped.
    """
    if not answer.question_is_spoiler:
        return truncate(escape(answer.question), limit)
    question = " ".join(answer.question.replace(SPOILER, " ").split())
    return f"{SPOILER}{truncate(escape(question), limit - 2 * len(SPOILER))}{SPOILER}"


def withheld_notice(answer: Answer, spoiler_hint: str = SPOILER_HINT) -> str:
    """What was kept back and how to see it: for the asker alone, never the channel."""
    n = answer.withheld
    what = "passage" if n == 1 else "passages"
    if answer.passages:
        return f"🔒 {n} more {what} with spoilers withheld. {spoiler_hint}"
    return f"🔒 The {what} that answer this contain spoilers ({n} withheld). {spoiler_hint}"


def _description(answer: Answer, public: bool, note: str, spoiler_hint: str) -> str:
    lines = [f"**Q:** {echo(answer)}"]
    if note:
        lines.append(f"*{escape(note)}*")
    if answer.abstained:
        lines.append(DONT_KNOW)
        lines.append(escape(answer.hint))
    elif answer.withheld and not public:
        lines.append(withheld_notice(answer, spoiler_hint))
    return "\n".join(lines)


def _ranks(shown: Sequence[Passage], total: int) -> str:
    first, last = shown[0].rank, shown[-1].rank
    if last - first + 1 == len(shown):
        numbers = f"{first}–{last}" if last > first else str(first)
    else:  # a page re-filtered for a changed spoiler setting
        numbers = ", ".join(str(p.rank) for p in shown)
    return f"Passages {numbers} of {total}"


def render_answer(
    answer: Answer,
    *,
    shown: Sequence[Passage] | None = None,
    public: bool = True,
    note: str = "",
    spoiler_hint: str = SPOILER_HINT,
) -> Message:
    """The message `/ask` sends: `shown` passages (the first page by default), and a
    `note` on how it was answered (a spoiler channel, say).

    A public reply never mentions withheld spoilers: whether there are any would tell
    the channel something about the story. A private one says how many and why.
    """
    shown = answer.passages[:PAGE_SIZE] if shown is None else shown
    shown = shown[:FIELDS_MAX]
    description = _description(answer, public, note, spoiler_hint)
    footer = ""
    if shown:
        total = len(answer.passages)
        footer = f"{_ranks(shown, total)} · quoted from the cited sources"
    room = EMBED_TOTAL_MAX - len(description) - len(footer)
    per_field = room // max(1, len(shown))
    fields = []
    for p in shown:
        name = _plain(f"{p.rank}. {p.chunk.doc.title}", min(FIELD_NAME_MAX, per_field // 4))
        cite = truncate(citation(p), min(FIELD_VALUE_MAX // 2, per_field // 4))
        value_room = min(FIELD_VALUE_MAX, per_field - len(name))
        body = passage_body(p, value_room - len(cite) - 1)
        fields.append(Field(name, f"{body}\n{cite}"))
    embed = Embed("", description, tuple(fields), footer)
    return Message("", (embed,))


def render_sources(corpus: Corpus) -> Message:
    """The message `/sources` sends: every document with its citation details."""
    documents = corpus.documents[:FIELDS_MAX]
    description = truncate(
        escape(f"Answers about {corpus.film} are quoted from these sources."), 500
    )
    room = (EMBED_TOTAL_MAX - len(description) - 100) // max(1, len(documents))
    fields = []
    for doc in documents:
        details = [escape(doc.source), escape(doc.kind)]
        if doc.date:
            details.append(doc.date.isoformat())
        details += _link(doc.url)
        name = _plain(doc.title, min(FIELD_NAME_MAX, room // 3))
        value = truncate(" · ".join(details), min(FIELD_VALUE_MAX, room - len(name)))
        fields.append(Field(name, value))
    return Message("", (Embed("Sources", description, tuple(fields), ""),))


def render_help(corpus: Corpus, *, feedback_days: int) -> Message:
    """The message `/help` sends: what the bot answers, spoilers, commands, what it keeps."""
    film, topics = escape(corpus.film), escape(", ".join(corpus.topics))
    titles = escape(", ".join(d.title for d in corpus.documents))
    stored = (
        "For the maintainer's report, the questions asked, the passages shown and the "
        "👍/👎 votes, with no user id (a vote is keyed by a one-way hash that cannot be "
        f"turned back into an id); deleted after {feedback_days} days."
        if feedback_days
        else "Questions and votes are not recorded on this bot."
    )
    sections = [
        (
            "What I answer",
            f"Questions about {film}: {topics}. Every answer quotes "
            f"and cites my {len(corpus.documents)} sources ({titles}); `/sources` lists them. "
            "If they do not say, I say I don't know.",
        ),
        (
            "Spoilers",
            "Passages about the twist are left out of your answers until you turn them on "
            "with `/spoilers on` (`/spoilers off` turns them off, `/spoilers status` tells "
            "you which). In replies others can see, they stay behind spoiler tags. In a "
            "channel the server made a spoiler channel, everyone gets them, still tagged.",
        ),
        (
            "Commands",
            "`/ask question: who composed the music?` answers in the channel "
            "(`private: True` for just you; **More results** pages on)\n"
            "`/spoilers on` · `/spoilers off` · `/spoilers status`\n"
            "`/sources` · `/help`\n"
            "Right-click a message → **Apps** → **Ask about this**: answers it, just for you\n"
            "`/config spoiler-channel` · `/config show`: for server managers",
        ),
        (
            "A wrong answer?",
            "Press 👎 under it (👍 for a good one). The maintainer reads which answers were "
            "voted down and which questions I could not answer, and improves the sources.",
        ),
        (
            "What I keep about you",
            "Your spoiler choice, by your Discord user id, only while it is on: `/spoilers "
            f"off` deletes it. {stored} Servers' spoiler channels.",
        ),
    ]
    fields = tuple(Field(name, truncate(text, FIELD_VALUE_MAX)) for name, text in sections)
    return Message("", (Embed(_plain(f"{corpus.film}: help", 200), "", fields, ""),))


# Terminal escape sequences (CSI such as "clear screen", OSC such as "set the window
# title", and two-character ones), then any control character left but newline and tab.
_TERMINAL_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def terminal_safe(text: str) -> str:
    """Text for a terminal with control sequences removed: corpus text is data, and
    must not set the window title or clear the screen of the maintainer reading it."""
    return _TERMINAL_ESCAPES.sub("", text)


def render_text(answer: Answer, *, limit: int, spoiler_hint: str) -> str:
    """A readable plain-text answer for the terminal; spoiler tags shown as such."""
    return terminal_safe(_text_lines(answer, limit, spoiler_hint))


def _text_lines(answer: Answer, limit: int, spoiler_hint: str) -> str:
    lines = [f"Q: {answer.question}", ""]
    if answer.abstained:
        lines += [DONT_KNOW, answer.hint]
        return "\n".join(lines)
    for p in answer.passages[:limit]:
        chunk = p.chunk
        spoiler = " [SPOILER]" if p.spoiler else ""
        lines.append(
            f"[{p.rank}] {chunk.doc.title} — {chunk.doc.source} ({chunk.doc.kind}), "
            f"{chunk.where}{spoiler}"
        )
        text = (
            chunk.text.replace(p.highlight, f">>{p.highlight}<<", 1) if p.highlight else chunk.text
        )
        text = f"{SPOILER}{text}{SPOILER}" if p.spoiler else text
        lines.append(textwrap.indent(text, "    "))
        if chunk.doc.url:
            lines.append(f"    {chunk.doc.url}")
        lines.append("")
    if answer.withheld:
        lines.append(f"{answer.withheld} passage(s) with spoilers withheld. {spoiler_hint}")
    return "\n".join(lines).rstrip()
