"""Replies built from match results: known gaps and answers in several parts, as text, JSON and
Telegram HTML (which must stay within Telegram's tag set and escape everything)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.formatting import HEDGE, answer_html, result_json, result_text
from bot.knowledge import load_knowledge
from bot.matching import Matcher
from tests.telegram_html import problems
from tests.test_matching import GAP_YAML


@pytest.fixture
def gapped(make_kb) -> Matcher:
    return Matcher(load_knowledge(*make_kb({"gaps.yaml": GAP_YAML})))


GAP_QUESTION = "which spanish city did miravia launch in"
TWO_PARTS = "what coupon does miravia give and when did miravia launch"


def test_a_gap_shows_what_the_article_does_say(gapped):
    result = gapped.match(GAP_QUESTION)
    text = result_text(gapped.kb, result)
    assert text.startswith("The article doesn't name a city")
    assert "“Miravia launched in Spain in November.”" in text
    html, buttons = answer_html(gapped.kb, result)
    assert problems(html) == []
    assert "doesn't name a city" in html and "<blockquote>" in html
    assert buttons == [("When did miravia launch", "a:miravia-launch")]


def test_a_gap_in_json_is_not_an_answer_but_names_the_gap(gapped):
    data = result_json(gapped.kb, gapped.match(GAP_QUESTION))
    assert (data["answered"], data["kind"], data["entry_id"]) == (False, "gap", None)
    assert data["gap_id"] == "miravia-city-gap"
    assert data["citations"][0]["quote"] == "Miravia launched in Spain in November."


def test_both_parts_are_answered_with_their_quotes(gapped):
    result = gapped.match(TWO_PARTS)
    html, _ = answer_html(gapped.kb, result)
    assert problems(html) == []
    assert html.count("<blockquote>") == 2
    assert "30% off" in html and "launched in Spain in November" in html
    text = result_text(gapped.kb, result)
    assert text.index("30% off") < text.index("Miravia launched in Spain")
    data = result_json(gapped.kb, result)
    assert [a["entry_id"] for a in data["also"]] == ["miravia-launch"]
    assert data["also"][0]["citations"][0]["quote"] == "Miravia launched in Spain in November."


def test_a_single_answer_has_no_also(gapped):
    data = result_json(gapped.kb, gapped.match("what coupon does miravia give"))
    assert data["also"] == [] and data["gap_id"] is None and data["kind"] == "answer"


@pytest.mark.parametrize(("score", "hedged"), [(95.0, False), (80.0, False), (79.9, True),
                                               (61.0, True)])
def test_a_less_confident_answer_says_it_is_the_closest_match(gapped, score, hedged):
    result = replace(gapped.match("what coupon does miravia give"), score=score)
    assert result.answered
    text = result_text(gapped.kb, result)
    html, _ = answer_html(gapped.kb, result)
    assert text.startswith(HEDGE) is hedged
    assert html.startswith(f"<i>{HEDGE}</i>") is hedged and problems(html) == []
    assert "30% off" in text and "30% off" in html


def test_a_not_sure_reply_is_not_hedged(gapped):
    result = gapped.match("what is the weather in madrid")
    assert not result.answered and HEDGE not in result_text(gapped.kb, result)
