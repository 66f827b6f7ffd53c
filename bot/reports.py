"""Reports for curators: usage statistics and the unanswered questions, grouped.

Pure functions over query-log rows, shared by /stats, /unanswered and `python -m bot report`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from rapidfuzz import fuzz, process

from bot.matching import fold
from bot.store import QueryRow

SIMILAR = 80.0  # token_sort_ratio at which two unanswered questions count as the same one


@dataclass(frozen=True, slots=True)
class UnansweredGroup:
    question: str  # the most frequent wording
    count: int
    examples: tuple[str, ...]  # up to 3 other wordings
    last_seen: float
    known_gap: str | None = None  # the gap entry they hit: the article lacks it, nothing to add


def stats_snapshot(rows: list[QueryRow], votes: list[tuple[str | None, int]], now: float
                   ) -> dict[str, Any]:
    """Counts for /stats and `report`; pure, so it is tested without a database."""
    day, week = now - 86400, now - 7 * 86400
    answered = [r for r in rows if r.answered]
    per_entry: dict[str, list[int]] = {}
    for entry_id, vote in votes:
        if entry_id:
            per_entry.setdefault(entry_id, []).append(vote)
    feedback = sorted(((e, sum(v > 0 for v in vs), sum(v < 0 for v in vs))
                       for e, vs in per_entry.items()), key=lambda t: (t[1] - t[2], t[0]))
    return {
        "today": sum(r.ts >= day for r in rows),
        "week": sum(r.ts >= week for r in rows),
        "total": len(rows),
        "users": len({r.user_hash for r in rows}),
        "answer_rate": len(answered) / len(rows) if rows else 0.0,
        "top_entries": Counter(r.entry_id for r in answered).most_common(5),
        "top_topics": Counter(r.topic for r in answered).most_common(5),
        "feedback": feedback,  # (entry, up, down), worst first
    }


def group_unanswered(rows: list[QueryRow], limit: int = 20) -> list[UnansweredGroup]:
    """Similar unanswered questions grouped (rapidfuzz), most frequent first."""
    wordings: dict[str, list[QueryRow]] = {}
    for row in rows:
        if not row.answered and row.question.strip():
            key = " ".join(re.findall(r"\w+", fold(row.question)))
            wordings.setdefault(key, []).append(row)
    order = sorted(wordings, key=lambda k: (-len(wordings[k]), k))
    groups: list[list[str]] = []
    heads: list[str] = []
    for key in order:
        match = process.extractOne(key, heads, scorer=fuzz.token_sort_ratio, processor=None,
                                   score_cutoff=SIMILAR) if heads else None
        if match is None:
            heads.append(key)
            groups.append([key])
        else:
            groups[match[2]].append(key)
    result = []
    for keys in groups:
        members = [r for k in keys for r in wordings[k]]
        head = wordings[keys[0]][-1].question
        examples = tuple(wordings[k][-1].question for k in keys[1:4])
        gaps = Counter(r.entry_id for r in members if r.entry_id).most_common(1)
        result.append(UnansweredGroup(head, len(members), examples, max(r.ts for r in members),
                                      gaps[0][0] if gaps else None))
    result.sort(key=lambda g: (-g.count, -g.last_seen, g.question))
    return result[:limit]


def stats_text(snapshot: dict[str, Any], days: int | None = None) -> str:
    lines = [f"Questions: {snapshot['today']} today, {snapshot['week']} in 7 days, "
             f"{snapshot['total']} {'in ' + str(days) + ' days' if days else 'in all'} "
             f"({snapshot['users']} people)",
             f"Answered: {100 * snapshot['answer_rate']:.0f}%"]
    if snapshot["top_entries"]:
        lines.append("Top answers: " + ", ".join(f"{e} ({n})" for e, n in
                                                 snapshot["top_entries"]))
    if snapshot["top_topics"]:
        lines.append("Top topics: " + ", ".join(f"{t} ({n})" for t, n in
                                                snapshot["top_topics"]))
    if snapshot["feedback"]:
        lines.append("Feedback, worst first: " + ", ".join(
            f"{e} +{up}/-{down}" for e, up, down in snapshot["feedback"][:10]))
    return "\n".join(lines)


def unanswered_text(groups: list[UnansweredGroup]) -> str:
    if not groups:
        return "No unanswered questions. 🎉"
    lines = []
    for g in groups:
        lines.append(f"{g.count}× {g.question}" + (f"  [known gap: {g.known_gap}]"
                                                   if g.known_gap else ""))
        lines += [f"    also: {e}" for e in g.examples]
    return "\n".join(lines)


def render(snapshot: dict[str, Any], groups: list[UnansweredGroup], fmt: str,
           days: int | None = None) -> str:
    if fmt == "json":
        return json.dumps({"stats": snapshot, "unanswered": [asdict(g) for g in groups]},
                          ensure_ascii=False, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["count", "question", "other_wordings", "last_seen", "known_gap"])
        for g in groups:
            writer.writerow([g.count, g.question, " | ".join(g.examples), round(g.last_seen),
                             g.known_gap or ""])
        return out.getvalue().rstrip("\n")
    return (f"{stats_text(snapshot, days)}\n\nUnanswered questions, most frequent first:\n"
            f"{unanswered_text(groups)}")
