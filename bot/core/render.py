"""Answer -> the exact Discord message payload, always within Discord's limits.

Corpus text is escaped first (so a `|` in a passage cannot close a spoiler tag),
then truncated on whole escape sequences, then wrapped in `||` tags: no cut can
leave a tag open. Spoiler text only ever goes into field values, where Discord
renders spoiler tags; titles, names and footers never carry it.

Markdown is escaped with discord.py's own escaper (`discord.utils.escape_markdown`),
which the edge that sends the payload hands to a `Renderer`: the core imports nothing
from Discord, and a CLI answer printed as text never loads discord.py (a third of its
cached start). The CLI and the bot share everything here.
"""

import re
import textwrap
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import accumulate
from typing import Any, NamedTuple, Protocol

from bot.core.answer import PAGE_SIZE, Answer, Passage
from bot.core.corpus import Corpus, sentence_spans
from bot.core.figures import Figure

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
EXCERPT_CHARS = 400  # a longer passage is trimmed to the sentences around its best one
_LEAD_CHARS = 500  # the answer line
_HINT_CHARS = 1000


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


class EscapeMarkdown(Protocol):
    """Discord's markdown escaper: discord.utils.escape_markdown."""

    def __call__(self, text: str, *, ignore_links: bool) -> str: ...


def _escape(escape_markdown: EscapeMarkdown, text: str) -> str:
    """discord.py escapes a `[text](link)` as a whole by prefixing it, leaving any `||` or
    `**` inside it live; a second pass escapes every emphasis or spoiler character left."""
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


def excerpt(text: str, highlight: str, budget: int = EXCERPT_CHARS) -> tuple[str, bool, bool]:
    """The whole sentences around `highlight` that fit in about `budget` characters,
    verbatim, growing after it first; and whether text was cut before and after."""
    if len(text) <= budget:
        return text, False, False
    spans = sentence_spans(text)
    at = max(text.find(highlight), 0) if highlight else 0
    ends = list(accumulate(len(span) for span in spans))
    first = bisect_right(ends, at)
    last = bisect_right(ends, at + max(len(highlight), 1) - 1)
    size = sum(len(span) for span in spans[first : last + 1])
    while True:
        grown = size
        if last + 1 < len(spans) and size + len(spans[last + 1]) <= budget:
            last += 1
            size += len(spans[last])
        if first > 0 and size + len(spans[first - 1]) <= budget:
            first -= 1
            size += len(spans[first])
        if size == grown:
            break
    return "".join(spans[first : last + 1]).strip(), first > 0, last < len(spans) - 1


def _link(url: str | None) -> list[str]:
    """A markdown link to `url`, or nothing if it is absent or could break out of the link."""
    return [f"[link](<{url}>)"] if url and _SAFE_URL.fullmatch(url) else []


def withheld_notice(answer: Answer, spoiler_hint: str = SPOILER_HINT) -> str:
    """What was kept back and how to see it: for the asker alone, never the channel."""
    n = answer.withheld
    what = "passage" if n == 1 else "passages"
    if answer.passages:
        return f"🔒 {n} more {what} with spoilers withheld. {spoiler_hint}"
    return f"🔒 The {what} that answer this contain spoilers ({n} withheld). {spoiler_hint}"


def _stated(passage: Passage, figure: Figure) -> str:
    """One source's figure, when the sources differ: "58 min (film guide, ¶2)"."""
    return f"{figure.text} ({passage.chunk.doc.source}, {passage.chunk.where})"


def _ranks(shown: Sequence[Passage], total: int) -> str:
    first, last = shown[0].rank, shown[-1].rank
    if last - first + 1 == len(shown):
        numbers = f"{first}–{last}" if last > first else str(first)
    else:  # a page re-filtered for a changed spoiler setting
        numbers = ", ".join(str(p.rank) for p in shown)
    return f"Passages {numbers} of {total}"


class Renderer:
    """Answers, the sources and the help as Discord message payloads.

    `escape_markdown` is discord.py's `discord.utils.escape_markdown`, handed in by the
    edge that sends the payload (module docstring).
    """

    def __init__(self, escape_markdown: EscapeMarkdown) -> None:
        # Cached: the same passages recur across asks, and escaping is half of rendering.
        self._cached_escape = lru_cache(maxsize=4096)(partial(_escape, escape_markdown))

    def escape(self, text: str) -> str:
        """Markdown-escape corpus or member text so nothing in it can open or close markup."""
        return self._cached_escape(text)

    def _plain(self, text: str, limit: int) -> str:
        """Escape and fit one-line text (titles, names, footers)."""
        return truncate(self.escape(" ".join(text.split())), limit)

    def passage_body(self, passage: Passage, limit: int) -> str:
        """The passage trimmed to the sentences around its best one, escaped, its best
        sentence in bold, spoiler-tagged, within `limit`."""
        highlight = passage.highlight
        text, cut_before, cut_after = excerpt(passage.chunk.text, highlight)
        at = text.find(highlight) if highlight else -1
        if at < 0:
            before, middle, after = "", "", text
        else:
            before, middle, after = text[:at], highlight, text[at + len(highlight) :]
        before = ("… " if cut_before else "") + self.escape(before)
        after = self.escape(after) + (" …" if cut_after else "")
        middle = self.escape(middle)
        wrap = 2 * len(SPOILER) if passage.spoiler else 0
        bold = 4 if middle else 0
        budget = limit - wrap - bold
        # Keep the highlighted sentence whole where possible: trim after it, then before it.
        after = truncate(after, max(0, budget - len(before) - len(middle)))
        before = truncate(before, max(0, budget - len(middle) - len(after)), keep="end")
        middle = truncate(middle, max(0, budget - len(before) - len(after)))
        body = before + (f"**{middle}**" if middle else "") + after
        return f"{SPOILER}{body}{SPOILER}" if passage.spoiler else body

    def citation(self, passage: Passage) -> str:
        chunk = passage.chunk
        source, kind = self.escape(chunk.doc.source), self.escape(chunk.doc.kind)
        parts = [f"— {source}, {kind}, {chunk.where}"]
        return " · ".join(parts + _link(chunk.doc.url))

    def echo(self, answer: Answer, *, public: bool, limit: int = _ECHO_BUDGET) -> str:
        """The member's question as a reply quotes it: in a reply others can see, always inside
        spoiler tags. Tagging only questions that touch the twist would tell the channel which
        words do ("karate" tagged, "judo" not); tagging all tells it nothing. A member's own
        `||` marks are markup, not words, and are dropped.
        """
        return self._tagged(" ".join(answer.question.replace(SPOILER, " ").split()), public, limit)

    def _tagged(self, text: str, tagged: bool, limit: int) -> str:
        """Text, escaped and cut to `limit`, inside spoiler tags when `tagged`."""
        if not tagged:
            return truncate(self.escape(text), limit)
        return f"{SPOILER}{truncate(self.escape(text), limit - 2 * len(SPOILER))}{SPOILER}"

    def _lead(self, answer: Answer) -> list[str]:
        """The answer line, and when the top sources disagree on a figure, each one's."""
        top = answer.passages[0]
        lead = self._tagged(" ".join(answer.lead.split()), top.spoiler, _LEAD_CHARS)
        lines = [f"**A:** {lead}"]
        if answer.differing:
            stated = " · ".join(
                self._tagged(_stated(p, figure), p.spoiler, 200) for p, figure in answer.differing
            )
            lines.append(f"**The sources differ:** {stated}")
        return lines

    def _description(
        self, answer: Answer, shown: Sequence[Passage], public: bool, note: str, spoiler_hint: str
    ) -> str:
        lines = [f"**Q:** {self.echo(answer, public=public)}"]
        if note:
            lines.append(f"*{self.escape(note)}*")
        if shown and shown[0] is answer.passages[0]:  # the first page leads with the answer
            lines += self._lead(answer)
        if answer.abstained:
            lines.append(DONT_KNOW)
            lines.append(truncate(self.escape(answer.hint), _HINT_CHARS))  # a manifest's topics
        elif answer.withheld and not public:
            lines.append(withheld_notice(answer, spoiler_hint))
        return "\n".join(lines)

    def render_answer(
        self,
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
        description = self._description(answer, shown, public, note, spoiler_hint)
        footer = ""
        if shown:
            total = len(answer.passages)
            footer = f"{_ranks(shown, total)} · quoted from the cited sources"
        room = EMBED_TOTAL_MAX - len(description) - len(footer)
        per_field = room // max(1, len(shown))
        fields = []
        for p in shown:
            name = self._plain(
                f"{p.rank}. {p.chunk.doc.title}", min(FIELD_NAME_MAX, per_field // 4)
            )
            cite = truncate(self.citation(p), min(FIELD_VALUE_MAX // 2, per_field // 4))
            value_room = min(FIELD_VALUE_MAX, per_field - len(name))
            body = self.passage_body(p, value_room - len(cite) - 1)
            fields.append(Field(name, f"{body}\n{cite}"))
        embed = Embed("", description, tuple(fields), footer)
        return Message("", (embed,))

    def render_sources(self, corpus: Corpus) -> Message:
        """The message `/sources` sends: every document with its citation details."""
        documents = corpus.documents[:FIELDS_MAX]
        description = truncate(
            self.escape(f"Answers about {corpus.film} are quoted from these sources."), 500
        )
        room = (EMBED_TOTAL_MAX - len(description) - 100) // max(1, len(documents))
        fields = []
        for doc in documents:
            details = [self.escape(doc.source), self.escape(doc.kind)]
            if doc.date:
                details.append(doc.date.isoformat())
            details += _link(doc.url)
            name = self._plain(doc.title, min(FIELD_NAME_MAX, room // 3))
            value = truncate(" · ".join(details), min(FIELD_VALUE_MAX, room - len(name)))
            fields.append(Field(name, value))
        return Message("", (Embed("Sources", description, tuple(fields), ""),))

    def render_help(self, corpus: Corpus, *, feedback_days: int) -> Message:
        """The message `/help` sends: what the bot answers, spoilers, commands, what it keeps."""
        film, topics = self.escape(corpus.film), self.escape(", ".join(corpus.topics))
        titles = self.escape(", ".join(d.title for d in corpus.documents))
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
        return Message("", (Embed(self._plain(f"{corpus.film}: help", 200), "", fields, ""),))


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


def render_text(answer: Answer, *, limit: int, spoiler_hint: str, full: bool = False) -> str:
    """A readable plain-text answer for the terminal; spoiler tags shown as such."""
    return terminal_safe(_text_lines(answer, limit, spoiler_hint, full))


def _text_lines(answer: Answer, limit: int, spoiler_hint: str, full: bool) -> str:
    lines = [f"Q: {answer.question}"]
    if answer.abstained:
        lines += ["", DONT_KNOW, answer.hint]
        return "\n".join(lines)
    if answer.passages and not answer.confident:
        lines.append("(Not sure: these passages are only the closest.)")
    if answer.passages:
        top = answer.passages[0]
        lead = " ".join(answer.lead.split())
        lines.append(f"A: {SPOILER}{lead}{SPOILER}" if top.spoiler else f"A: {lead}")
    if answer.differing:
        stated = " · ".join(_stated(p, figure) for p, figure in answer.differing)
        lines.append(f"The sources differ: {stated}")
    lines.append("")
    for p in answer.passages[:limit]:
        chunk = p.chunk
        spoiler = " [SPOILER]" if p.spoiler else ""
        lines.append(
            f"[{p.rank}] {chunk.doc.title} — {chunk.doc.source} ({chunk.doc.kind}), "
            f"{chunk.where}{spoiler}"
        )
        text, cut_before, cut_after = (
            (chunk.text, False, False) if full else excerpt(chunk.text, p.highlight)
        )
        if p.highlight:
            text = text.replace(p.highlight, f">>{p.highlight}<<", 1)
        text = ("… " if cut_before else "") + text + (" …" if cut_after else "")
        text = f"{SPOILER}{text}{SPOILER}" if p.spoiler else text
        lines.append(textwrap.indent(text, "    "))
        if chunk.doc.url:
            lines.append(f"    {chunk.doc.url}")
        lines.append("")
    if answer.withheld:
        lines.append(f"{answer.withheld} passage(s) with spoilers withheld. {spoiler_hint}")
    return "\n".join(lines).rstrip()
