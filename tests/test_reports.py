"""Curator reports: unanswered questions grouped, and `python -m bot report`."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bot.reports import group_unanswered, render, stats_snapshot
from bot.store import QueryLog, QueryRow


def row(i: int, question: str, answered: bool = False, ts: float = 1000.0) -> QueryRow:
    return QueryRow(i, ts + i, "private", question, "e" if answered else None, None, 0.0,
                    answered, 1.0, f"u{i}")


def test_similar_unanswered_questions_are_grouped_most_frequent_first():
    rows = [row(1, "who is the CEO of Cainiao"), row(2, "who is the ceo of cainiao?"),
            row(3, "Cainiao CEO who is"), row(4, "miravia payment methods"),
            row(5, "what payment methods does miravia accept"),
            row(6, "lazada ceo", answered=True), row(7, "  ")]
    groups = group_unanswered(rows)
    assert [g.count for g in groups] == [3, 1, 1]
    assert groups[0].question.lower().startswith("who is the ceo of cainiao")
    assert "Cainiao CEO who is" in groups[0].examples
    assert all("lazada" not in g.question for g in groups)


def test_group_limit():
    words = ["weather", "pizza", "football", "bitcoin", "holiday", "music", "taxes", "cars"]
    rows = [row(i, f"{w} {w} {w}?") for i, w in enumerate(words)]
    assert len(group_unanswered(rows, limit=5)) == 5


def test_render_formats():
    groups = group_unanswered([row(1, "who founded trendyol"), row(2, "who founded trendyol")])
    snapshot = {"today": 2, "week": 2, "total": 2, "users": 2, "answer_rate": 0.0,
                "top_entries": [], "top_topics": [], "feedback": []}
    text = render(snapshot, groups, "text")
    assert "2× who founded trendyol" in text and "Answered: 0%" in text
    data = json.loads(render(snapshot, groups, "json"))
    assert data["unanswered"][0]["count"] == 2 and data["stats"]["total"] == 2
    table = list(csv.reader(io.StringIO(render(snapshot, groups, "csv"))))
    assert table[0] == ["count", "question", "other_wordings", "last_seen", "known_gap"]
    assert table[1][:2] == ["2", "who founded trendyol"] and table[1][4] == ""


def test_questions_that_hit_a_known_gap_are_marked():
    gap = QueryRow(1, 1000.0, "private", "which six countries is lazada in", "gap-lazada-countries",
                   "lazada", 90.0, False, 1.0, "u1")
    groups = group_unanswered([gap, row(2, "weather in madrid")])
    assert {g.question: g.known_gap for g in groups} == {
        "which six countries is lazada in": "gap-lazada-countries", "weather in madrid": None}
    text = render(stats_snapshot([gap], [], 2000.0), groups, "text")
    assert "1× which six countries is lazada in  [known gap: gap-lazada-countries]" in text
    assert "1× weather in madrid\n" in text + "\n"
    table = list(csv.reader(io.StringIO(render(stats_snapshot([gap], [], 2000.0), groups, "csv"))))
    assert sorted(r[4] for r in table[1:]) == ["", "gap-lazada-countries"]


def fill(data_dir) -> None:
    log = QueryLog(data_dir)
    for user, question, answered in [(1, "lazada ceo", True), (2, "who founded trendyol", False),
                                     (3, "who founded Trendyol?", False),
                                     (4, "weather in madrid", False)]:
        query_id = log.record(chat_type="private", question=question,
                              entry_id="lazada-ceo" if answered else None,
                              topic="lazada" if answered else None, score=50.0,
                              answered=answered, latency_ms=2.0, user_id=user)
        if answered:
            log.vote(query_id, user, -1)
    log.close()


def test_report_command_reads_the_database(run_cli, tmp_path):
    data = tmp_path / "data"
    fill(data)
    env = {"DATA_DIR": str(data)}
    text = run_cli("report", env=env)
    assert text.returncode == 0, text.stderr
    assert "4 in all" in text.stdout and "Answered: 25%" in text.stdout
    assert "2× who founded trendyol" in text.stdout.lower()
    assert "lazada-ceo +0/-1" in text.stdout
    as_json = json.loads(run_cli("report", "--format", "json", "--days", "30", env=env).stdout)
    assert as_json["stats"]["total"] == 4
    as_csv = run_cli("report", "--format", "csv", "--limit", "1", env=env).stdout
    assert len(as_csv.strip().splitlines()) == 2


def test_report_without_a_database_is_a_clean_error(run_cli, tmp_path):
    out = run_cli("report", env={"DATA_DIR": str(tmp_path / "empty")})
    assert out.returncode == 1 and "no query log" in out.stderr
    assert "Traceback" not in out.stderr


def test_stats_snapshot_counts():
    now = 1_000_000.0
    rows = [QueryRow(1, now - 10, "private", "a", "e1", "t1", 90, True, 1, "u1"),
            QueryRow(2, now - 2 * 86400, "group", "b", None, None, 10, False, 1, "u2"),
            QueryRow(3, now - 30 * 86400, "private", "c", "e1", "t1", 90, True, 1, "u1")]
    snap = stats_snapshot(rows, [("e1", 1), ("e2", -1), ("e2", -1)], now)
    assert (snap["today"], snap["week"], snap["total"], snap["users"]) == (1, 2, 3, 2)
    assert snap["answer_rate"] == pytest.approx(2 / 3)
    assert snap["top_entries"] == [("e1", 2)] and snap["top_topics"] == [("t1", 2)]
    assert snap["feedback"][0] == ("e2", 0, 2)  # worst first
