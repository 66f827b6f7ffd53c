"""Turning match results into text: plain for the terminal, JSON for batch use.

No telegram import: the bot's HTML rendering builds on the same pieces.
"""

from __future__ import annotations

from typing import Any

from bot.knowledge import Citation, KnowledgeBase
from bot.matching import MatchResult

NOT_SURE = "I'm not sure the article answers that."
GREETING = ("Hi! I answer questions about Alibaba's cross-border e-commerce (AliExpress, Lazada, "
            "Miravia, allyLikes, Cainiao, Trendyol) from ChinaTalk's article.")
EMPTY = "Ask me a question about Alibaba's cross-border e-commerce."
HELP = ("I'm a bot that answers questions about Alibaba's cross-border e-commerce in 2022, "
        "quoting ChinaTalk's article \"Cross-border update: Alibaba\". Ask me about AliExpress, "
        "Lazada, Miravia, allyLikes, Cainiao or Trendyol.")


def citation_dict(kb: KnowledgeBase, citation: Citation) -> dict[str, str]:
    source = kb.sources[citation.source]
    return {"source": source.id, "title": source.title, "url": source.url,
            "quote": citation.quote}


def result_json(kb: KnowledgeBase, result: MatchResult) -> dict[str, Any]:
    """The one JSON shape of `ask --json`; `answered` only for a cited fact."""
    entry = result.entry if result.answered else None
    return {
        "question": result.question,
        "answered": entry is not None,
        "entry_id": entry.id if entry else None,
        "topic": entry.topic if entry else None,
        "score": result.score,
        "answer": entry.answer if entry else _reply_for(result),
        "citations": [citation_dict(kb, c) for c in entry.citations] if entry else [],
        "suggestions": [{"entry_id": s.entry_id, "question": s.question}
                        for s in result.suggestions],
    }


def _reply_for(result: MatchResult) -> str:
    return {"greeting": GREETING, "empty": EMPTY, "help": HELP}.get(result.kind, NOT_SURE)


def result_text(kb: KnowledgeBase, result: MatchResult) -> str:
    """Terminal rendering: answer, then each citation with its source, then suggestions."""
    lines: list[str] = []
    if result.answered and result.entry is not None:
        lines.append(result.entry.answer)
        for citation in result.entry.citations:
            source = kb.sources[citation.source]
            lines += ["", f"  “{citation.quote}”", f"  — {source.title}, {source.publisher}",
                      f"    {source.url}"]
        if result.suggestions:
            lines += ["", "Related:"] + [f"  - {s.question}" for s in result.suggestions]
    else:
        lines.append(_reply_for(result))
        if result.suggestions:
            lines += ["", "Did you mean:"] + [f"  - {s.question}" for s in result.suggestions]
    return "\n".join(lines)
