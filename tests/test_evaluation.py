"""Evaluation: how answers are judged, and the accuracy gate CI enforces on the dev set."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.evaluation import (
    Case,
    EvalFileError,
    judge,
    load_cases,
    run,
    summarize,
    verbatim_phrasings,
)
from bot.knowledge import Citation, Entry, load_knowledge
from bot.matching import MatchResult, Suggestion
from tests.conftest import (
    ANALYSTS_SET,
    BLIND2_SET,
    BLIND3_SET,
    BLIND4_SET,
    BLIND5_SET,
    BLIND6_SET,
    BLIND7_SET,
    BLIND_SET,
    CHAT_SET,
    DEV_SET,
    FRESH_SET,
    HELDOUT_SET,
    HOLDOUT_SET,
    NEARMISS_SET,
    PRACTITIONERS_SET,
    PUBLIC_SET,
)

ENTRY = Entry("e-one", "t", ("q",), "Lazada's CEO is James Dong.",
              (Citation("s", "James Dong, a former assistant of Alibaba CEO Daniel Zhang"),))
OTHER = Entry("e-two", "t", ("q",), "Miravia launched in Spain.",
              (Citation("s", "Miravia launched in Spain"),))


def answered(entry: Entry = ENTRY) -> MatchResult:
    return MatchResult("q", entry, 90.0, True)


ABSTAINED = MatchResult("q", None, 10.0, False)


@pytest.mark.parametrize(("case", "result", "correct"), [
    (Case("q", expect="e-one"), answered(), True),
    (Case("q", expect="e-two"), answered(), False),
    (Case("q", expect_any=("james dong",)), answered(), True),
    (Case("q", expect_any=("daniel zhang",)), answered(), True),  # found in the quote
    (Case("q", expect_any=("Jiang Fan",)), answered(), False),
    (Case("q", expect_any=("James",), expect_all=("James", "Tmall")), answered(), False),
    (Case("q", expect_all=("James", "Zhang")), answered(), True),
    (Case("q", expect_any=("James",)), ABSTAINED, False),
    (Case("q", abstain=True), ABSTAINED, True),
    (Case("q", abstain=True), answered(), False),
])
def test_judge(case, result, correct):
    assert judge(case, result) is correct


def test_questions_the_knowledge_base_holds_word_for_word_are_counted(make_kb):
    kb = load_knowledge(*make_kb())
    cases = [Case("When did Miravia launch?", expect_any=("November",)),
             Case("MIRAVIA  launch-date", expect_any=("November",)),
             Case("when did miravia launch in spain", expect_any=("November",)),
             Case("miravia discount code", abstain=True)]
    assert [c.question for c in verbatim_phrasings(cases, kb)] == [
        "When did Miravia launch?", "MIRAVIA  launch-date"]


def test_load_cases_reads_both_sets():
    for path in (DEV_SET, HOLDOUT_SET, CHAT_SET, NEARMISS_SET, ANALYSTS_SET, PRACTITIONERS_SET,
                 HELDOUT_SET, FRESH_SET, BLIND_SET, BLIND2_SET, BLIND3_SET,
                 BLIND4_SET, BLIND5_SET, BLIND6_SET, BLIND7_SET, PUBLIC_SET):
        cases = load_cases(path)
        assert cases and all(c.question for c in cases)


def test_dev_set_is_large_and_a_quarter_out_of_scope():
    cases = load_cases(DEV_SET)
    assert len(cases) >= 200
    assert sum(c.abstain for c in cases) / len(cases) >= 0.25


@pytest.mark.parametrize("text", ["not: a list\n", "- 42\n", "- q: x\n  expcet: y\n", "[unclosed"])
def test_bad_eval_files_raise_a_clear_error(tmp_path: Path, text: str):
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    with pytest.raises(EvalFileError, match=r"cases\.yaml"):
        load_cases(path)


def test_summary_counts_confident_mistakes():
    outcomes = run(_FixedMatcher(), [Case("a", expect="e-one"), Case("b", abstain=True)])
    summary = summarize(outcomes)
    assert (summary.in_scope_correct, summary.abstained, summary.confidently_wrong) == (1, 0, 1)


def test_summary_counts_right_entries_among_suggestions():
    outcomes = run(_DecliningMatcher(), [Case("a", expect_any=("James",)),
                                         Case("b", expect_any=("Tmall",)),
                                         Case("c", abstain=True)])
    assert [o.suggested for o in outcomes] == [True, False, False]
    summary = summarize(outcomes)
    assert (summary.not_answered, summary.suggested, summary.suggested_rate) == (2, 1, 0.5)


class _DecliningMatcher:
    """Answers nothing; suggests an unrelated entry, then ENTRY."""

    kb = SimpleNamespace(entries={ENTRY.id: ENTRY, OTHER.id: OTHER})

    def match(self, question: str) -> MatchResult:
        return MatchResult(question, None, 10.0, False,
                           (Suggestion(OTHER.id, "x", 50.0), Suggestion(ENTRY.id, "y", 40.0)))


class _FixedMatcher:
    """Answers every question with ENTRY."""

    def match(self, question: str) -> MatchResult:
        return MatchResult(question, ENTRY, 90.0, True)


# Accuracy cannot silently regress: each question set must keep meeting its floor (a little
# below the measured figures, which the README and issue notes give).
FLOORS = {
    DEV_SET: {"accuracy": 0.95, "abstain": 0.95, "wrong": 0.02},  # the targets
    HOLDOUT_SET: {"accuracy": 0.88, "abstain": 0.94, "wrong": 0.025},
    CHAT_SET: {"accuracy": 0.935, "abstain": 0.98, "wrong": 0.02},
    NEARMISS_SET: {"accuracy": 0.91, "abstain": 0.90, "wrong": 0.055},
    ANALYSTS_SET: {"accuracy": 0.92, "abstain": 0.95, "wrong": 0.02},
    PRACTITIONERS_SET: {"accuracy": 0.89, "abstain": 0.97, "wrong": 0.02},
    HELDOUT_SET: {"accuracy": 0.90, "abstain": 0.93, "wrong": 0.03},
    FRESH_SET: {"accuracy": 0.90, "abstain": 0.94, "wrong": 0.03},
    BLIND_SET: {"accuracy": 0.87, "abstain": 0.92, "wrong": 0.025},
    BLIND2_SET: {"accuracy": 0.91, "abstain": 0.97, "wrong": 0.02},
    BLIND3_SET: {"accuracy": 0.895, "abstain": 0.96, "wrong": 0.03},
    BLIND4_SET: {"accuracy": 0.94, "abstain": 0.93, "wrong": 0.025},
    BLIND5_SET: {"accuracy": 0.895, "abstain": 0.95, "wrong": 0.025},
    BLIND6_SET: {"accuracy": 0.97, "abstain": 0.98, "wrong": 0.01},
    BLIND7_SET: {"accuracy": 0.88, "abstain": 0.94, "wrong": 0.02},
}


@pytest.mark.parametrize("path", list(FLOORS), ids=lambda p: p.name)
def test_accuracy_floor(matcher, path):
    floors = FLOORS[path]
    summary = summarize(run(matcher, load_cases(path)))
    assert summary.accuracy >= floors["accuracy"], summary
    assert summary.abstain_rate >= floors["abstain"], summary
    assert summary.wrong_rate <= floors["wrong"], summary
