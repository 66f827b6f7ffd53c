"""Measuring the matcher on question files: accuracy, abstention and confident mistakes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.knowledge import Entry, KnowledgeBase, Problem, normalize_for_quote, phrasing_key
from bot.matching import Matcher, MatchResult, fold

_CASE_KEYS = {"q", "expect", "expect_any", "expect_all", "abstain", "kind", "topic", "note"}


class EvalFileError(ValueError):
    """A question file that can not be read; the message names the file and the item."""


@dataclass(frozen=True, slots=True)
class Case:
    question: str
    expect: str | None = None
    expect_any: tuple[str, ...] = ()
    expect_all: tuple[str, ...] = ()
    abstain: bool = False
    kind: str = ""
    source: str = ""

    @property
    def in_scope(self) -> bool:
        return not self.abstain


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    result: MatchResult
    correct: bool
    suggested: bool = False  # not answered, but a right entry is among the "did you mean" buttons

    @property
    def confidently_wrong(self) -> bool:
        return self.result.answered and not self.correct


def load_cases(path: Path) -> list[Case]:
    try:
        data = yaml.safe_load(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"{path}: can not read: {exc}") from None
    except yaml.YAMLError as exc:
        raise EvalFileError(f"{path}: invalid YAML: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        data = data["questions"]
    if not isinstance(data, list):
        raise EvalFileError(f"{path}: expected a list of questions")
    cases = []
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict) or not isinstance(item.get("q"), str):
            raise EvalFileError(f"{path}: item {i} needs a 'q' with the question text")
        unknown = set(item) - _CASE_KEYS
        if unknown:
            raise EvalFileError(f"{path}: item {i} has unknown key(s) {sorted(unknown)}")
        case = Case(
            question=item["q"],
            expect=item.get("expect"),
            expect_any=tuple(str(s) for s in item.get("expect_any") or ()),
            expect_all=tuple(str(s) for s in item.get("expect_all") or ()),
            abstain=bool(item.get("abstain", False)),
            kind=str(item.get("kind", "")),
            source=f"{Path(path).name}#{i}",
        )
        if not case.abstain and not (case.expect or case.expect_any or case.expect_all):
            raise EvalFileError(f"{path}: item {i} needs expect, expect_any, expect_all "
                                "or abstain: true")
        cases.append(case)
    return cases


def _fold(text: str) -> str:
    return normalize_for_quote(text).casefold()


def judge(case: Case, result: MatchResult) -> bool:
    if case.abstain:
        return not result.answered
    if not result.answered or result.entry is None:
        return False
    if case.expect:
        return result.entry.id == case.expect
    shown = (result.entry, *result.also)  # a two-part question is judged on both answers
    haystack = _fold(" ".join(text for e in shown
                              for text in (e.answer, *(c.quote for c in e.citations))))
    if case.expect_any and not any(_fold(s) in haystack for s in case.expect_any):
        return False
    return all(_fold(s) in haystack for s in case.expect_all)


def verbatim_phrasings(cases: Iterable[Case], kb: KnowledgeBase) -> list[Case]:
    """The questions the knowledge base holds word for word as a phrasing (case, accents and
    punctuation aside). A question set measures questions nobody wrote phrasings from; one that
    is a phrasing measures only that the matcher finds its own text, so a curator should see
    how many there are, and a phrasing copied from an eval set shows up here."""
    phrasings = {phrasing_key(fold(q)) for entry in kb.entries.values() for q in entry.questions}
    return [case for case in cases if phrasing_key(fold(case.question)) in phrasings]


def entry_answers(case: Case, entry: Entry) -> bool:
    """Whether that entry, given as the answer, would be judged right for the case."""
    return judge(case, MatchResult(case.question, entry, 0.0, True))


def run(matcher: Matcher, cases: Iterable[Case]) -> list[Outcome]:
    outcomes = []
    for case in cases:
        result = matcher.match(case.question)
        correct = judge(case, result)
        suggested = case.in_scope and not result.answered and any(
            entry_answers(case, matcher.kb.entries[s.entry_id])
            for s in result.suggestions if s.entry_id in matcher.kb.entries)
        outcomes.append(Outcome(case, result, correct, suggested))
    return outcomes


@dataclass(frozen=True, slots=True)
class Summary:
    total: int
    in_scope: int
    in_scope_correct: int
    out_of_scope: int
    abstained: int
    confidently_wrong: int
    not_answered: int = 0  # in-scope questions the bot did not answer
    suggested: int = 0  # ... of which a right entry was offered as "did you mean"

    @property
    def accuracy(self) -> float:
        return self.in_scope_correct / self.in_scope if self.in_scope else 1.0

    @property
    def abstain_rate(self) -> float:
        return self.abstained / self.out_of_scope if self.out_of_scope else 1.0

    @property
    def wrong_rate(self) -> float:
        return self.confidently_wrong / self.total if self.total else 0.0

    @property
    def suggested_rate(self) -> float:
        """A question the bot declines is still one tap from its answer when this is high."""
        return self.suggested / self.not_answered if self.not_answered else 1.0


def summarize(outcomes: list[Outcome]) -> Summary:
    ins = [o for o in outcomes if o.case.in_scope]
    outs = [o for o in outcomes if not o.case.in_scope]
    return Summary(
        total=len(outcomes),
        in_scope=len(ins),
        in_scope_correct=sum(o.correct for o in ins),
        out_of_scope=len(outs),
        abstained=sum(o.correct for o in outs),
        confidently_wrong=sum(o.confidently_wrong for o in outcomes),
        not_answered=sum(not o.result.answered for o in ins),
        suggested=sum(o.suggested for o in ins),
    )


def breakdown(outcomes: list[Outcome], matcher: Matcher) -> dict[str, Summary]:
    """Per topic: the expected entry's topic, else the answered one's, else '(out of scope)'."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if not o.case.in_scope:
            key = "(out of scope)"
        elif o.case.expect and o.case.expect in matcher.kb.entries:
            key = matcher.kb.entries[o.case.expect].topic
        elif o.result.entry is not None and o.correct:
            key = o.result.entry.topic
        else:
            key = "(unmatched)"
        groups[key].append(o)
    return {k: summarize(v) for k, v in sorted(groups.items())}


def describe_failure(o: Outcome) -> dict[str, Any]:
    r = o.result
    want = ("abstain" if o.case.abstain else o.case.expect
            or "any of " + ", ".join(o.case.expect_any or o.case.expect_all))
    got = (f"{r.entry.id} ({r.score})" if r.answered and r.entry
           else f"abstained (best {r.best_id} {r.score}, margin {r.margin}"
           + ("; a right entry is suggested)" if o.suggested else ")"))
    return {"where": o.case.source, "kind": o.case.kind, "question": o.case.question,
            "expected": want, "got": got}


def conflicts(matcher: Matcher) -> list[Problem]:
    """Phrasings the matcher sends to another entry: the knowledge base asked of itself.

    Each is a place where two entries compete for the same words (a phrasing that belongs
    elsewhere, or a neighbour that needs a phrasing of its own); users asking it that way get
    the other entry's answer, or a gap's "not in the article" instead of a fact.
    """
    found = []
    for entry in matcher.kb.entries.values():
        sites = matcher.kb.sites.get(entry.id, ())
        for i, question in enumerate(entry.questions):
            result = matcher.match(question)
            if result.best_id in (None, entry.id) or result.kind not in {"answer", "gap"}:
                continue
            file, line = sites[i] if i < len(sites) else ("?", None)
            found.append(Problem(file, line, entry.id,
                                 f"phrasing {question!r} is matched to {result.best_id!r} "
                                 f"(confidence {result.score:.0f})", "warning"))
    return found
