"""The loader and validator: every kind of curator mistake is reported with file, line, entry."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from bot.knowledge import (
    MAX_FILE_BYTES,
    KnowledgeBase,
    KnowledgeError,
    load_knowledge,
    normalize_for_quote,
)
from tests.conftest import KNOWLEDGE_DIR, TOPIC_YAML


def entry_file(extra: str) -> str:
    """A topic file whose second entry has a mistake."""
    return TOPIC_YAML + extra


BROKEN = [
    # (name, files, expected file, expected line, expected entry, message fragment)
    ("yaml syntax", {"miravia.yaml": "topic:\n  id: [unclosed\n"}, "miravia.yaml", 3, None,
     "YAML syntax error"),
    ("unknown entry key", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions: [what is x]
            answer: X.
            awnser: typo
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """}, "extra.yaml", 6, "x-one", "unknown key 'awnser'"),
    ("unknown top key", {"extra.yaml": "topics: []\n"}, "extra.yaml", 1, None,
     "unknown key 'topics'"),
    ("missing answer", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions: [what is x]
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """}, "extra.yaml", 2, "x-one", "missing required key 'answer'"),
    ("wrong type", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions: what is x
            answer: X.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """}, "extra.yaml", 4, "x-one", "questions must be a list"),
    ("number phrasing", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions:
              - what is x
              - 2022
            answer: X.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """}, "extra.yaml", 6, "x-one", "put it in quotes"),
    ("empty phrasing", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions:
              - what is x
              - "  "
            answer: X.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """}, "extra.yaml", 6, "x-one", "is empty"),
    ("duplicate entry id", {"extra.yaml": """\
        entries:
          - id: miravia-launch
            topic: miravia
            questions: [when was the launch]
            answer: X.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """}, "miravia.yaml", 8, "miravia-launch", "duplicate entry id 'miravia-launch'"),
    ("unknown topic", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: nowhere
            questions: [what is x]
            answer: X.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """}, "extra.yaml", 3, "x-one", "unknown topic 'nowhere'"),
    ("unknown source", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions: [what is x]
            answer: X.
            citations:
              - source: elsewhere
                quote: "Miravia launched in Spain in November."
        """}, "extra.yaml", 7, "x-one", "unknown source 'elsewhere'"),
    ("unknown related", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions: [what is x]
            answer: X.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
            related: [x-missing]
        """}, "extra.yaml", 7, "x-one", "unknown entry 'x-missing'"),
    ("invalid command", {"other.yaml": """\
        topic:
          id: other
          command: Other-Topic
          title: Other
          summary: Other things.
        """}, "other.yaml", 3, "other", "must be 1-32 of a-z"),
    ("reserved command", {"other.yaml": """\
        topic:
          id: other
          command: help
          title: Other
          summary: Other things.
        """}, "other.yaml", 3, "other", "one of the bot's own commands"),
    ("duplicate command", {"other.yaml": """\
        topic:
          id: other
          command: miravia
          title: Other
          summary: Other things.
        """}, "other.yaml", 3, "other", "already used by topic 'miravia'"),
    ("over-long answer", {"extra.yaml": f"""\
        entries:
          - id: x-one
            topic: miravia
            questions: [what is x]
            answer: "{'word ' * 400}"
            citations: [{{source: src, quote: "Miravia launched in Spain in November."}}]
        """}, "extra.yaml", 5, "x-one", "at most 1500"),
    ("over-long quote", {"extra.yaml": f"""\
        entries:
          - id: x-one
            topic: miravia
            questions: [what is x]
            answer: X.
            citations:
              - source: src
                quote: "{'Miravia ' * 45}"
        """}, "extra.yaml", 8, "x-one", "quote is 45 words"),
    ("quote not in source", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions: [what is x]
            answer: X.
            citations:
              - source: src
                quote: "Miravia launched in Portugal in November."
        """}, "extra.yaml", 8, "x-one", "quote not found verbatim"),
    ("bad id", {"extra.yaml": """\
        entries:
          - id: "Has Spaces"
            topic: miravia
            questions: [what is x]
            answer: X.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """}, "extra.yaml", 2, "Has Spaces", "must be 1-40 of a-z"),
    ("duplicate key", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions: [what is x]
            answer: X.
            answer: Y.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """}, "extra.yaml", 6, None, "appears twice"),
    ("alias bomb", {"extra.yaml": """\
        a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]
        """}, "extra.yaml", 1, None, "anchors and aliases"),
    ("not utf-8", {"extra.yaml": b"entries:\n  - id: caf\xe9\n"}, "extra.yaml", 2, None,
     "not UTF-8"),
    ("not a mapping", {"extra.yaml": "- just\n- a list\n"}, "extra.yaml", 1, None,
     "must be a block"),
    ("gap not a boolean", {"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions: [which city in spain]
            answer: The article doesn't say.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
            gap: sometimes
        """}, "extra.yaml", 7, "x-one", "gap must be true or false"),
    ("gap as overview", {"extra.yaml": """\
        topic:
          id: lazada
          command: lazada
          title: Lazada
          summary: A shop.
          overview: lazada-gap
        entries:
          - id: lazada-gap
            questions: [which ceo came before]
            answer: The article doesn't name them.
            citations: [{source: src, quote: "its fifth CEO in 5 years"}]
            gap: true
        """}, "extra.yaml", 6, "lazada", "is a gap entry"),
    ("topic-less entry", {"extra.yaml": """\
        entries:
          - id: x-one
            questions: [what is x]
            answer: X.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """}, "extra.yaml", 2, "x-one", "entry has no topic"),
]


@pytest.mark.parametrize(("files", "file", "line", "entry", "fragment"),
                         [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_each_mistake_names_file_line_and_entry(make_kb, files, file, line, entry, fragment):
    kdir, sdir = make_kb(files)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(kdir, sdir)
    matching = [p for p in info.value.errors if fragment in p.message]
    assert matching, [str(p) for p in info.value.problems]
    problem = matching[0]
    assert (problem.file, problem.line, problem.entry) == (file, line, entry)
    assert str(problem).startswith(f"{file}:{line}:")


def test_all_errors_are_reported_in_one_run(make_kb):
    kdir, sdir = make_kb({"extra.yaml": """\
        entries:
          - id: x-one
            topic: nowhere
            questions: [what is x]
            answer: X.
            citations: [{source: src, quote: "Not in the source at all."}]
          - id: x-two
            topic: miravia
            questions: []
            answer: Y.
            bogus: 1
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """})
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(kdir, sdir)
    messages = " | ".join(p.message for p in info.value.errors)
    for fragment in ("unknown topic 'nowhere'", "quote not found", "at least one item",
                     "unknown key 'bogus'"):
        assert fragment in messages


def test_duplicate_phrasing_is_a_warning_not_an_error(make_kb):
    kdir, sdir = make_kb({"zz-later.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions:
              - When did Miravia launch?
            answer: X.
            citations: [{source: src, quote: "Miravia launched in Spain in November."}]
        """})
    kb = load_knowledge(kdir, sdir)
    assert [w.severity for w in kb.warnings] == ["warning"]
    assert "duplicates one of entry 'miravia-launch'" in kb.warnings[0].message
    assert kb.warnings[0].line == 5


def test_good_base_loads_into_frozen_objects(make_kb):
    kdir, sdir = make_kb()
    kb = load_knowledge(kdir, sdir)
    assert set(kb.entries) == {"miravia-launch", "miravia-coupon"}
    assert kb.quotes_verified == kb.quotes_total == 2
    assert kb.unverified_reason is None
    assert kb.topic_for_command("miravia").overview == "miravia-launch"
    entry = kb.entries["miravia-coupon"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.answer = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        kb.entries["new"] = entry  # type: ignore[index]


def test_without_sources_quotes_are_reported_unverified(make_kb):
    kdir, _ = make_kb({"extra.yaml": """\
        entries:
          - id: x-one
            topic: miravia
            questions: [what is x]
            answer: X.
            citations: [{source: src, quote: "Not in the source, unchecked."}]
        """})
    kb = load_knowledge(kdir, None)
    assert kb.quotes_verified == 0
    assert "not checked" in (kb.unverified_reason or "")


@pytest.mark.parametrize("setup", ["missing", "empty", "no-yaml"])
def test_unusable_directory_is_an_error(tmp_path: Path, setup: str):
    directory = tmp_path / "kb"
    if setup != "missing":
        directory.mkdir()
    if setup == "no-yaml":
        (directory / "notes.txt").write_text("hello")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(directory)
    assert info.value.errors


def test_huge_file_is_refused_without_parsing(make_kb):
    kdir, sdir = make_kb({"huge.yaml": "# " + "x" * (MAX_FILE_BYTES + 10) + "\n"})
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(kdir, sdir)
    assert any("at most" in p.message and p.file == "huge.yaml" for p in info.value.errors)


def test_unreadable_file_is_reported(make_kb, monkeypatch):
    kdir, sdir = make_kb({"locked.yaml": "entries: []\n"})
    real = Path.read_bytes

    def deny(self: Path) -> bytes:
        if self.name == "locked.yaml":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(kdir, sdir)
    assert any(p.file == "locked.yaml" and "can not read" in p.message
               for p in info.value.errors)


# --- the real knowledge base -------------------------------------------------------------------


def test_a_topic_alias_in_a_synonym_group_is_a_warning(make_kb):
    """The matcher would fold the topic into that ordinary word ("cainiao" became "delivery")."""
    kdir, sdir = make_kb({"synonyms.yaml": """\
        synonyms:
          - [Miravai, new platform]
        """})
    kb = load_knowledge(kdir, sdir)
    assert [w.severity for w in kb.warnings] == ["warning"]
    assert "alias 'miravai' is also in the synonym group [miravai, new platform]" in \
        kb.warnings[0].message
    assert kb.warnings[0].entry == "miravia"


def test_real_knowledge_base_is_valid_and_every_quote_verified(kb: KnowledgeBase):
    assert kb.quotes_total > 0
    assert kb.quotes_verified == kb.quotes_total
    assert kb.unverified_reason is None
    assert not kb.warnings, [str(w) for w in kb.warnings]


def test_every_quote_is_verbatim_in_the_source(kb: KnowledgeBase, sources_dir: Path):
    """Checked independently of the loader: only whitespace and apostrophes may differ."""
    texts = {}
    for source in kb.sources.values():
        assert source.file, f"source {source.id} names no text file"
        texts[source.id] = normalize_for_quote((sources_dir / source.file).read_text("utf-8"))
    quotes = [c for e in kb.entries.values() for c in e.citations]
    quotes += [c for t in kb.topics.values() for c in t.citations]
    assert quotes
    for citation in quotes:
        assert normalize_for_quote(citation.quote) in texts[citation.source], citation.quote
        assert len(citation.quote.split()) <= 40


def test_real_knowledge_base_covers_required_topics(kb: KnowledgeBase):
    commands = {t.command for t in kb.topics.values()}
    assert {"alibaba", "aliexpress", "lazada", "miravia", "allylikes", "cainiao",
            "trendyol"} <= commands
    assert len(kb.entries) >= 100
    assert kb.phrasing_count / len(kb.entries) >= 5
    for topic in kb.topics.values():
        assert topic.follow_up and topic.citations and topic.overview


def test_numbers_in_answers_appear_in_the_source(kb: KnowledgeBase, sources_dir: Path):
    """Numbers exactly as the article gives them: every figure in an answer is in the text."""
    text = (sources_dir / "chinatalk-cross-border-update-alibaba.txt").read_text("utf-8")
    source_numbers = set(re.findall(r"\d+(?:[.,]\d+)*", text))
    for entry in kb.entries.values():
        for number in re.findall(r"\d+(?:[.,]\d+)*", entry.answer):
            assert number in source_numbers, f"{entry.id}: {number} is not in the article"


def test_knowledge_files_are_valid_under_their_own_names():
    names = sorted(p.name for p in KNOWLEDGE_DIR.glob("*.yaml"))
    assert "sources.yaml" in names and "synonyms.yaml" in names
