"""What a "More results" click shows next: the rest of one /ask's lookup, re-filtered with
the member's spoiler setting at the time of the click, for the latest asks only."""

from collections import OrderedDict
from dataclasses import dataclass, field

from bot.core.answer import PAGE_SIZE, Answer, Lookup, Passage


@dataclass
class Paged:
    """One /ask's lookup, before spoiler policy, and the passages its asker has seen."""

    lookup: Lookup
    asker_id: int
    seen: set[str] = field(default_factory=set)  # chunk ids

    def next_page(self, answer: Answer) -> list[Passage]:
        """The next passages of `answer` not yet shown, marked as seen."""
        page = [p for p in answer.passages if p.chunk.id not in self.seen][:PAGE_SIZE]
        self.seen.update(p.chunk.id for p in page)
        return page


class AnswerPages:
    """The answers a "More results" button pages through, the latest `kept` of them.

    Kept in memory only: after a restart or once forgotten, a click is told to ask again.
    """

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self._pages: OrderedDict[int, Paged] = OrderedDict()

    def add(self, ask_id: int, lookup: Lookup, asker_id: int, shown: list[Passage]) -> None:
        self._pages[ask_id] = Paged(lookup, asker_id, {p.chunk.id for p in shown})
        if len(self._pages) > self.kept:
            self._pages.popitem(last=False)

    def get(self, ask_id: int) -> Paged | None:
        return self._pages.get(ask_id)
