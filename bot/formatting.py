"""Turning match results into text: plain for the terminal, JSON for batch use.

No telegram import: the bot's HTML rendering builds on the same pieces.
"""

from __future__ import annotations

import html
from typing import Any

from bot.knowledge import Citation, Entry, KnowledgeBase, Source, Topic
from bot.matching import MatchResult

NOT_SURE = "I'm not sure the article answers that."
GREETING = ("Hi! I answer questions about Alibaba's cross-border e-commerce (AliExpress, Lazada, "
            "Miravia, allyLikes, Cainiao, Trendyol) from ChinaTalk's article.")
EMPTY = "Ask me a question about Alibaba's cross-border e-commerce."
HEDGE = "Closest match I found in the article:"
HEDGE_BELOW = 80.0  # an answer less confident than this (%) says it is only the closest match
THANKS = "You're welcome! Ask me anything else about Alibaba's cross-border e-commerce."
HELP = ("I'm a bot that answers questions about Alibaba's cross-border e-commerce in 2022, "
        "quoting ChinaTalk's article \"Cross-border update: Alibaba\". Ask me about AliExpress, "
        "Lazada, Miravia, allyLikes, Cainiao or Trendyol.")


def citation_dict(kb: KnowledgeBase, citation: Citation) -> dict[str, str]:
    source = kb.sources[citation.source]
    return {"source": source.id, "title": source.title, "url": source.url,
            "quote": citation.quote}


def result_json(kb: KnowledgeBase, result: MatchResult) -> dict[str, Any]:
    """The one JSON shape of `ask --json`; `answered` only for a cited fact.

    A known gap (`kind` "gap") is not answered, but says what the article gives instead, with
    its quotes; `gap_id` names the gap entry so curators can find it.
    """
    entry = result.entry if result.answered else None
    shown = _shown(result)
    return {
        "question": result.question,
        "answered": entry is not None,
        "kind": result.kind,
        "entry_id": entry.id if entry else None,
        "gap_id": shown.id if shown is not None and shown.gap else None,
        "topic": entry.topic if entry else None,
        "score": result.score,
        "answer": shown.answer if shown else _reply_for(result),
        "citations": [citation_dict(kb, c) for c in shown.citations] if shown else [],
        "also": [{"entry_id": e.id, "answer": e.answer,
                  "citations": [citation_dict(kb, c) for c in e.citations]} for e in result.also],
        "suggestions": [{"entry_id": s.entry_id, "question": s.question}
                        for s in result.suggestions],
    }


def _shown(result: MatchResult) -> Entry | None:
    """The entry whose text the reply shows: an answer, or a known gap."""
    if result.entry is not None and (result.answered or result.kind == "gap"):
        return result.entry
    return None


def _reply_for(result: MatchResult) -> str:
    return {"greeting": GREETING, "thanks": THANKS, "empty": EMPTY, "help": HELP}.get(
        result.kind, NOT_SURE)


def _hedged(result: MatchResult) -> bool:
    """A less confident answer says so: users then read its quote with that in mind."""
    return result.answered and result.score < HEDGE_BELOW


def result_text(kb: KnowledgeBase, result: MatchResult) -> str:
    """Terminal rendering: answer, then each citation with its source, then suggestions."""
    lines: list[str] = [HEDGE, ""] if _hedged(result) else []
    shown = _shown(result)
    if shown is not None:
        for k, entry in enumerate((shown, *result.also)):
            lines += [""] * (k > 0) + [entry.answer]
            for source_id, quotes in _by_source(entry.citations).items():
                source = kb.sources[source_id]
                lines += [""] + [f"  “{q}”" for q in quotes]
                lines += [f"  — {source.title}, {source.publisher}", f"    {source.url}"]
        if result.suggestions:
            lines += ["", "Related:"] + [f"  - {s.question}" for s in result.suggestions]
    else:
        lines.append(_reply_for(result))
        if result.suggestions:
            lines += ["", "Did you mean:"] + [f"  - {s.question}" for s in result.suggestions]
    return "\n".join(lines)


# --- Telegram HTML ------------------------------------------------------------------------------
# Only Telegram's HTML subset is produced (b, i, a href, blockquote), and every piece of text from
# the knowledge base or from a user goes through html.escape first.

MESSAGE_LIMIT = 4096
ECHO_LIMIT = 200  # how much of a user's question an abstention quotes back
Button = tuple[str, str]  # (label, callback data)
BUTTON_LABEL_LIMIT = 60


def esc(text: str) -> str:
    """Escape text for Telegram HTML (&, <, >); quotes stay readable."""
    return html.escape(text, quote=False)


def esc_attr(text: str) -> str:
    """Escape an attribute value (an href), quotes included."""
    return html.escape(text, quote=True)


def _label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BUTTON_LABEL_LIMIT else text[: BUTTON_LABEL_LIMIT - 1] + "…"


def entry_title(entry: Entry) -> str:
    """An entry as a question to click on: its first phrasing, capitalised."""
    question = entry.questions[0]
    return question[:1].upper() + question[1:]


def entry_button(kb: KnowledgeBase, entry_id: str) -> Button:
    """A button that answers one entry; ids are at most 40 characters, so data fits 64 bytes."""
    return _label(entry_title(kb.entries[entry_id])), f"a:{entry_id}"


def _by_source(citations: tuple[Citation, ...]) -> dict[str, list[str]]:
    """Quotes grouped by their source, in order: one source line under its quotes."""
    grouped: dict[str, list[str]] = {}
    for citation in citations:
        grouped.setdefault(citation.source, []).append(citation.quote)
    return grouped


def citations_html(kb: KnowledgeBase, citations: tuple[Citation, ...]) -> str:
    blocks = []
    for source_id, quotes in _by_source(citations).items():
        source = kb.sources[source_id]
        quoted = "\n".join(f"<blockquote>{esc(q)}</blockquote>" for q in quotes)
        blocks.append(f"{quoted}\n— <a href=\"{esc_attr(source.url)}\">{esc(source.title)}</a>, "
                      f"{esc(source.publisher)}")
    return "\n\n".join(blocks)


def entry_html(kb: KnowledgeBase, entry: Entry) -> str:
    """One entry's answer followed by its quotes."""
    return f"{esc(entry.answer)}\n\n{citations_html(kb, entry.citations)}"


def answer_html(kb: KnowledgeBase, result: MatchResult) -> tuple[str, list[Button]]:
    """The reply to a question: a cited answer with follow-ups, or an honest 'not sure'."""
    shown = _shown(result)
    if shown is not None:
        text = "\n\n".join(entry_html(kb, e) for e in (shown, *result.also))
        if _hedged(result):
            text = f"<i>{esc(HEDGE)}</i>\n\n{text}"
        return text, [entry_button(kb, s.entry_id) for s in result.suggestions]
    if result.kind in {"greeting", "thanks", "help", "empty"}:
        text = esc(_reply_for(result))
    else:
        echo = " ".join(result.question.split())
        if len(echo) > ECHO_LIMIT:
            echo = echo[: ECHO_LIMIT - 1] + "…"
        text = (f"{esc(NOT_SURE)} I couldn't find “{esc(echo)}” in the article."
                if echo else esc(NOT_SURE))
    if result.suggestions:
        text += "\n\n<b>Did you mean:</b>"
    return text, [entry_button(kb, s.entry_id) for s in result.suggestions]


def topic_card_html(kb: KnowledgeBase, topic: Topic) -> tuple[str, list[Button]]:
    parts = [f"<b>{esc(topic.title)}</b>", esc(topic.summary)]
    if topic.citations:
        parts.append(citations_html(kb, topic.citations))
    parts.append(f"Ask me anything about it, e.g. <i>/{esc(topic.command)} "
                 f"{esc(_example(kb, topic))}</i>")
    buttons = [entry_button(kb, e) for e in topic.follow_up if e in kb.entries][:4]
    return "\n\n".join(parts), buttons


def _example(kb: KnowledgeBase, topic: Topic) -> str:
    ids = kb.offered(topic.id)
    return kb.entries[ids[0]].questions[0] if ids else "what is it"


def topics_buttons(kb: KnowledgeBase) -> list[Button]:
    return [(_label(t.title), f"t:{t.id}") for t in kb.topics.values()]


def _source_line(source: Source) -> str:
    return (f"• <a href=\"{esc_attr(source.url)}\">{esc(source.title)}</a>, "
            f"{esc(source.publisher)} ({esc(source.published)})")


def help_html(kb: KnowledgeBase, bot_username: str | None = None) -> str:
    source_lines = "\n".join(_source_line(s) for s in kb.sources.values())
    commands = " ".join(f"/{esc(t.command)}" for t in kb.topics.values())
    mention = f"@{esc(bot_username)} " if bot_username else ""
    return (
        "I answer questions about Alibaba's cross-border e-commerce in 2022, with quotes from "
        f"my source:\n{source_lines}\n\n"
        "<b>How to ask</b>\n"
        "• In a private chat, just write your question.\n"
        "• In a group: <i>/ask who runs Lazada?</i>, mention me, or reply to my message.\n"
        f"• Topics: {commands} (add a question to ask within a topic).\n"
        f"• In any chat: type <i>{mention}your question</i> to share an answer.\n\n"
        "If the article doesn't say, I'll tell you, and suggest what I can answer."
    )


def sources_html(kb: KnowledgeBase) -> str:
    return "\n".join(["<b>Sources</b>", *(_source_line(s) for s in kb.sources.values())])


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split at paragraph boundaries (then lines, then words) so no part exceeds `limit`.

    Our paragraphs are whole HTML elements, so splitting between them keeps tags balanced.
    """
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for piece in _pieces(text, limit):
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            if current:
                parts.append(current)
            current = piece
    if current:
        parts.append(current)
    return parts


def _pieces(text: str, limit: int) -> list[str]:
    pieces = []
    for paragraph in text.split("\n\n"):
        if len(paragraph) <= limit:
            pieces.append(paragraph)
            continue
        line_buffer = ""
        for word in paragraph.replace("\n", " \n ").split(" "):
            while len(word) > limit:  # a single unbroken run: cut it hard
                pieces.append(word[:limit])
                word = word[limit:]
            candidate = f"{line_buffer} {word}" if line_buffer else word
            if len(candidate) > limit:
                pieces.append(line_buffer.strip())
                line_buffer = word
            else:
                line_buffer = candidate
        if line_buffer.strip():
            pieces.append(line_buffer.strip())
    return pieces
