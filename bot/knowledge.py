"""Loading and validating the curated knowledge base (YAML files under KNOWLEDGE_DIR).

Curators are not programmers, so every problem is reported with file, line and entry id, and all
problems of a run are reported together. Loading is all-or-nothing: a base with any error is never
returned, so a broken edit can not replace a working base.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

MAX_FILE_BYTES = 1_000_000
MAX_QUOTE_WORDS = 40
MAX_ANSWER_CHARS = 1500
MAX_SUMMARY_CHARS = 1500
MAX_PHRASING_CHARS = 200
MAX_ID_CHARS = 40  # ids travel in callback data, which Telegram caps at 64 bytes
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
# Commands the bot itself owns; a topic may not take one of these names.
RESERVED_COMMANDS = frozenset(
    {"start", "help", "ask", "sources", "topics", "reload", "stats", "unanswered", "cancel"}
)


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int | None
    entry: str | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        who = f" [{self.entry}]" if self.entry else ""
        return f"{where}:{who} {self.severity}: {self.message}"


class KnowledgeError(Exception):
    """The knowledge base could not be loaded; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        self.errors = tuple(p for p in self.problems if p.severity == "error")
        first = str(self.errors[0]) if self.errors else "unknown problem"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(first + more)


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    title: str
    publisher: str
    url: str
    published: str
    file: str | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    source: str
    quote: str


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    command: str
    title: str
    summary: str
    aliases: tuple[str, ...] = ()
    follow_up: tuple[str, ...] = ()
    citations: tuple[Citation, ...] = ()
    overview: str | None = None  # the entry that answers "what is <topic>"


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    topic: str
    questions: tuple[str, ...]
    answer: str
    citations: tuple[Citation, ...]
    keywords: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    # A known gap: the article does NOT give what these questions ask, and the answer says so
    # (and what the article does say nearby). Matching one is an honest "not in the article".
    gap: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class KnowledgeBase:
    sources: Mapping[str, Source]
    topics: Mapping[str, Topic]
    entries: Mapping[str, Entry]
    synonyms: tuple[tuple[str, ...], ...] = ()
    warnings: tuple[Problem, ...] = ()
    quotes_verified: int = 0
    quotes_total: int = 0
    unverified_reason: str | None = None
    _by_command: Mapping[str, Topic] = field(default_factory=dict, repr=False)
    # where each entry's phrasings are written ("file", line), for messages to curators
    sites: Mapping[str, tuple[tuple[str, int | None], ...]] = field(default_factory=dict,
                                                                    repr=False)

    def topic_for_command(self, command: str) -> Topic | None:
        return self._by_command.get(command.lower())

    def entries_in(self, topic_id: str) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries.values() if e.topic == topic_id)

    def offered(self, topic_id: str) -> tuple[str, ...]:
        """The entries a topic puts forward (its follow-ups, else all its entries), for starter
        suggestions and examples: never a known gap, which is not an answer to offer."""
        topic = self.topics[topic_id]
        ids = topic.follow_up or tuple(e.id for e in self.entries_in(topic_id))
        return tuple(i for i in ids if i in self.entries and not self.entries[i].gap)

    @property
    def phrasing_count(self) -> int:
        return sum(len(e.questions) for e in self.entries.values())


# --- YAML with line numbers -------------------------------------------------------------------


class _LineDict(dict):
    line: int = 0
    key_lines: dict[Any, int]


class _LineList(list):
    line: int = 0
    item_lines: list[int]


# libyaml's C parser when PyYAML has it (ten times faster); the pure-Python one otherwise.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader that remembers where each mapping and sequence item came from."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicate_keys: list[tuple[Any, int]] = []


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    result = _LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be plain text", key_node.start_mark
            )
        line = key_node.start_mark.line + 1
        if key in result:
            loader.duplicate_keys.append((key, line))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> _LineList:
    result = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _first_alias_line(text: str) -> int | None:
    """Line of the first alias (`*name`), found by the scanner before anything is built.

    Curators never need anchors; refusing them also defuses 'billion laughs' documents,
    whose text is small but whose expansion is exponential.
    """
    for token in yaml.scan(text, Loader=_BaseLoader):
        if isinstance(token, yaml.AliasToken | yaml.AnchorToken):
            return token.start_mark.line + 1
    return None


def _read_yaml(path: Path, name: str, problems: list[Problem]) -> Any:
    def fail(message: str, line: int | None = None) -> None:
        problems.append(Problem(name, line, None, message))

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            fail(f"file is {size:,} bytes; a knowledge file may hold at most {MAX_FILE_BYTES:,}")
            return None
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"can not read file: {exc.strerror or exc}")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        fail(f"file is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8", line)
        return None
    loader = _LineLoader(text)
    try:
        alias_line = _first_alias_line(text)
        if alias_line is not None:
            fail("anchors and aliases (& and *) are not allowed; write the text out", alias_line)
            return None
        node = loader.get_single_node()
        if node is None:
            return None
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = " ".join(filter(None, [exc.context, exc.problem]))
        fail(f"YAML syntax error: {detail}", mark.line + 1 if mark else None)
        return None
    except yaml.YAMLError as exc:
        fail(f"YAML error: {exc}")
        return None
    except RecursionError:
        fail("YAML is nested too deeply")
        return None
    finally:
        loader.dispose()
    for key, line in loader.duplicate_keys:
        fail(f"key {key!r} appears twice in the same block; the second would silently win", line)
    return data


# --- validation -------------------------------------------------------------------------------

_TOP_KEYS = {"sources", "synonyms", "topic", "entries"}
_SOURCE_KEYS = {"id": True, "title": True, "publisher": True, "url": True, "published": True,
                "file": False}
_TOPIC_KEYS = {"id": True, "command": True, "title": True, "summary": True, "aliases": False,
               "overview": False, "follow_up": False, "citations": False}
_ENTRY_KEYS = {"id": True, "questions": True, "answer": True, "citations": True,
               "keywords": False, "related": False, "topic": False, "gap": False}
_CITATION_KEYS = {"source": True, "quote": True}


class _Checker:
    """Collects problems for one file; each check reports and carries on."""

    def __init__(self, name: str, problems: list[Problem]):
        self.name = name
        self.problems = problems

    def error(self, line: int | None, entry: str | None, message: str) -> None:
        self.problems.append(Problem(self.name, line, entry, message))

    def warn(self, line: int | None, entry: str | None, message: str) -> None:
        self.problems.append(Problem(self.name, line, entry, message, "warning"))

    def fields(self, data: Any, spec: dict[str, bool], what: str, entry: str | None,
               line: int | None) -> dict[str, tuple[Any, int | None]] | None:
        """Check keys against the spec; returns {key: (value, line)} or None if not a mapping."""
        if not isinstance(data, dict):
            self.error(line, entry, f"{what} must be a block of 'key: value' lines, "
                                    f"got {_kind(data)}")
            return None
        lines = getattr(data, "key_lines", {})
        own = getattr(data, "line", line)
        out = {}
        for key, value in data.items():
            if key not in spec:
                allowed = ", ".join(spec)
                self.error(lines.get(key, own), entry,
                           f"unknown key {key!r} in {what} (allowed: {allowed})")
            else:
                out[key] = (value, lines.get(key, own))
        for key, required in spec.items():
            if required and key not in out:
                self.error(own, entry, f"{what} is missing required key {key!r}")
        return out

    def text(self, value: Any, line: int | None, entry: str | None, what: str,
             max_chars: int | None = None) -> str | None:
        if isinstance(value, date):
            value = value.isoformat()
        if not isinstance(value, str):
            hint = " (put it in quotes)" if isinstance(value, int | float | bool) else ""
            self.error(line, entry, f"{what} must be text, got {_kind(value)}{hint}")
            return None
        value = value.strip()
        if not value:
            self.error(line, entry, f"{what} is empty")
            return None
        if max_chars is not None and len(value) > max_chars:
            self.error(line, entry, f"{what} is {len(value)} characters; at most {max_chars}")
            return None
        return value

    def identifier(self, value: Any, line: int | None, entry: str | None, what: str) -> str | None:
        text = self.text(value, line, entry, what)
        if text is None:
            return None
        if not ID_RE.match(text) or len(text) > MAX_ID_CHARS:
            self.error(line, entry, f"{what} {text!r} must be 1-{MAX_ID_CHARS} of a-z, 0-9, "
                                    "'-' and '_', starting with a letter or digit")
            return None
        return text

    def text_list(self, value: Any, line: int | None, entry: str | None, what: str,
                  max_chars: int | None = None, required: bool = False) -> tuple[str, ...]:
        if value is None and not required:
            return ()
        if not isinstance(value, list):
            self.error(line, entry, f"{what} must be a list ('- item' lines), got {_kind(value)}")
            return ()
        if required and not value:
            self.error(line, entry, f"{what} must have at least one item")
        lines = getattr(value, "item_lines", [line] * len(value))
        items = []
        for item, item_line in zip(value, lines, strict=True):
            text = self.text(item, item_line, entry, f"item of {what}", max_chars)
            if text is not None:
                items.append(text)
        return tuple(items)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a block of keys"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"yes/no value {value}"
    if isinstance(value, int | float):
        return f"a number ({value})"
    return f"text {str(value)[:40]!r}"


@dataclass(slots=True)
class _Pending:
    """Where a cross-reference was made, so a dangling one can be reported there."""

    file: str
    line: int | None
    entry: str | None
    target: str
    kind: str


def load_knowledge(directory: Path, sources_dir: Path | None = None) -> KnowledgeBase:
    """Load every `*.yaml` directly under `directory` (subfolders such as eval/ are not read).

    With `sources_dir`, every quote is checked against the source texts; a quote not found is an
    error. Raises KnowledgeError with all problems when any is an error.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise KnowledgeError([Problem(str(directory), None, None,
                                      "knowledge directory does not exist")])
    files = sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"})
    if not files:
        raise KnowledgeError([Problem(str(directory), None, None,
                                      "no .yaml files in the knowledge directory")])
    builder = _Builder()
    for path in files:
        builder.add_file(path)
    return builder.finish(str(directory), sources_dir)


class _Builder:
    """Collects what the files define and what they refer to; references are resolved at the
    end, so files may refer to each other in any order."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.sources: dict[str, Source] = {}
        self.topics: dict[str, Topic] = {}
        self.entries: dict[str, Entry] = {}
        self.synonyms: list[tuple[str, ...]] = []
        self.defined_at: dict[tuple[str, str], tuple[str, int | None]] = {}
        self.refs: list[_Pending] = []
        self.citation_sites: list[tuple[str, int | None, str | None, Citation]] = []
        self.phrasing_owner: dict[str, tuple[str, str]] = {}
        self.phrasing_sites: dict[str, tuple[tuple[str, int | None], ...]] = {}
        self.commands: dict[str, str] = {}
        self.overview_refs: list[tuple[str, int | None, str, str]] = []

    def add_file(self, path: Path) -> None:
        name = path.name
        data = _read_yaml(path, name, self.problems)
        if data is None:
            if not any(p.file == name for p in self.problems):
                self.problems.append(Problem(name, None, None, "file is empty", "warning"))
            return
        check = _Checker(name, self.problems)
        top = check.fields(data, dict.fromkeys(_TOP_KEYS, False), "the file", None, 1)
        if top is None:
            return
        if "sources" in top:
            self._sources(check, *top["sources"])
        if "synonyms" in top:
            self._synonyms(check, *top["synonyms"])
        file_topic = self._topic(check, *top["topic"]) if "topic" in top else None
        if "entries" in top:
            self._entries(check, *top["entries"], file_topic)

    def _claim(self, check: _Checker, kind: str, ident: str, line: int | None) -> bool:
        where = self.defined_at.get((kind, ident))
        if where is not None:
            check.error(line, ident, f"duplicate {kind} id {ident!r} (already at "
                                     f"{where[0]}:{where[1]})")
            return False
        self.defined_at[(kind, ident)] = (check.name, line)
        return True

    def _refer(self, check: _Checker, line: int | None, owner: str, target: str,
               kind: str) -> None:
        self.refs.append(_Pending(check.name, line, owner, target, kind))

    def _citations(self, check: _Checker, value: Any, line: int | None, owner: str,
                   required: bool) -> tuple[Citation, ...]:
        if value is None and not required:
            return ()
        if not isinstance(value, list) or not value:
            check.error(line, owner, "citations must be a list of {source, quote} items, "
                                     "with at least one")
            return ()
        result = []
        for item in value:
            f = check.fields(item, _CITATION_KEYS, "a citation", owner,
                             getattr(item, "line", line))
            if f is None or "source" not in f or "quote" not in f:
                continue
            src = check.identifier(*f["source"], owner, "citation source")
            quote = check.text(*f["quote"], owner, "quote")
            if src is None or quote is None:
                continue
            words = len(quote.split())
            if words > MAX_QUOTE_WORDS:
                check.error(f["quote"][1], owner, f"quote is {words} words; quote at most "
                            f"{MAX_QUOTE_WORDS} (a sentence or two)")
                continue
            cite = Citation(src, quote)
            self._refer(check, f["source"][1], owner, src, "source")
            self.citation_sites.append((check.name, f["quote"][1], owner, cite))
            result.append(cite)
        return tuple(result)

    def _sources(self, check: _Checker, value: Any, line: int | None) -> None:
        if not isinstance(value, list):
            check.error(line, None, "sources must be a list")
            return
        for item in value:
            f = check.fields(item, _SOURCE_KEYS, "a source", None, getattr(item, "line", line))
            if f is None or "id" not in f:
                continue
            sid = check.identifier(*f["id"], None, "source id")
            if sid is None:
                continue
            if isinstance(f.get("published", ("",))[0], int):  # a bare year
                f["published"] = (str(f["published"][0]), f["published"][1])
            vals = {k: check.text(*f[k], sid, k) for k in _SOURCE_KEYS if k in f}
            url = vals.get("url")
            if url and not re.match(r"^https?://\S+$", url):
                check.error(f["url"][1], sid, f"url {url!r} must start with http(s)://")
                continue
            if None in vals.values() or len(vals) < 5:
                continue
            if self._claim(check, "source", sid, f["id"][1]):
                self.sources[sid] = Source(sid, vals["title"], vals["publisher"], url,
                                           vals["published"], vals.get("file"))

    def _synonyms(self, check: _Checker, value: Any, line: int | None) -> None:
        if not isinstance(value, list):
            check.error(line, None, "synonyms must be a list of groups like "
                                    "[overseas, international, abroad]")
            return
        for group, group_line in zip(value, getattr(value, "item_lines", []), strict=False):
            words = check.text_list(group, group_line, None, "synonym group", 60, True)
            if len(words) == 1:
                check.error(group_line, None, "a synonym group needs at least two words")
            elif len(words) > 1:
                self.synonyms.append(tuple(w.lower() for w in words))

    def _command(self, check: _Checker, value: Any, line: int | None, tid: str) -> str | None:
        cmd = check.text(value, line, tid, "command")
        if cmd is None:
            return None
        cmd = cmd.lstrip("/")
        if not COMMAND_RE.match(cmd):
            check.error(line, tid, f"command {cmd!r} must be 1-32 of a-z, 0-9 and _ "
                                   "(Telegram's rule)")
        elif cmd in RESERVED_COMMANDS:
            check.error(line, tid, f"command /{cmd} is one of the bot's own commands")
        elif cmd in self.commands:
            check.error(line, tid, f"command /{cmd} is already used by topic "
                                   f"{self.commands[cmd]!r}")
        else:
            self.commands[cmd] = tid
            return cmd
        return None

    def _topic(self, check: _Checker, value: Any, line: int | None) -> str | None:
        """The file's topic id (its entries default to it), even if the topic is invalid."""
        f = check.fields(value, _TOPIC_KEYS, "the topic", None, line)
        if f is None or "id" not in f:
            return None
        tid = check.identifier(*f["id"], None, "topic id")
        if tid is None:
            return None
        cmd = self._command(check, *f["command"], tid) if "command" in f else None
        title = check.text(*f["title"], tid, "title", 100) if "title" in f else None
        summary = (check.text(*f["summary"], tid, "summary", MAX_SUMMARY_CHARS)
                   if "summary" in f else None)
        aliases = check.text_list(*f.get("aliases", (None, line)), tid, "aliases", 60)
        follow = check.text_list(*f.get("follow_up", (None, line)), tid, "follow_up")
        for target in follow:
            self._refer(check, f["follow_up"][1], tid, target, "entry")
        overview = None
        if "overview" in f:
            overview = check.identifier(*f["overview"], tid, "overview")
            if overview:
                self._refer(check, f["overview"][1], tid, overview, "entry")
                self.overview_refs.append((check.name, f["overview"][1], tid, overview))
        cites = self._citations(check, *f.get("citations", (None, line)), tid, False)
        if None not in (cmd, title, summary) and self._claim(check, "topic", tid, f["id"][1]):
            self.topics[tid] = Topic(tid, cmd, title, summary, aliases, follow, cites, overview)
        return tid

    def _entries(self, check: _Checker, value: Any, line: int | None,
                 file_topic: str | None) -> None:
        if not isinstance(value, list):
            check.error(line, None, "entries must be a list of entries ('- id: ...')")
            return
        for item in value:
            self._entry(check, item, getattr(item, "line", line), file_topic)

    def _entry(self, check: _Checker, item: Any, line: int | None,
               file_topic: str | None) -> None:
        raw_id = item.get("id") if isinstance(item, dict) else None
        label = str(raw_id) if raw_id is not None else None
        f = check.fields(item, _ENTRY_KEYS, "an entry", label, line)
        if f is None or "id" not in f:
            return
        eid = check.identifier(*f["id"], label, "entry id")
        if eid is None:
            return
        if "topic" in f:
            topic_id = check.identifier(*f["topic"], eid, "topic")
        elif file_topic is None:
            check.error(line, eid, "entry has no topic: give the file a 'topic:' block or the "
                                   "entry a 'topic:' key")
            return
        else:
            topic_id = file_topic
        if topic_id is None:
            return
        self._refer(check, f.get("topic", (None, line))[1], eid, topic_id, "topic")
        questions = check.text_list(*f.get("questions", (None, line)), eid, "questions",
                                    MAX_PHRASING_CHARS, required=True)
        answer = (check.text(*f["answer"], eid, "answer", MAX_ANSWER_CHARS)
                  if "answer" in f else None)
        cites = self._citations(check, *f.get("citations", (None, line)), eid, True)
        keywords = check.text_list(*f.get("keywords", (None, line)), eid, "keywords", 60)
        related = check.text_list(*f.get("related", (None, line)), eid, "related")
        gap = False
        if "gap" in f:
            if isinstance(f["gap"][0], bool):
                gap = f["gap"][0]
            else:
                check.error(f["gap"][1], eid, "gap must be true or false")
        for target in related:
            if target == eid:
                check.error(f["related"][1], eid, "an entry can not be related to itself")
            else:
                self._refer(check, f["related"][1], eid, target, "entry")
        self._phrasings(check, eid, questions,
                        getattr(f.get("questions", (None,))[0], "item_lines", []), line)
        if questions and answer is not None and cites and \
                self._claim(check, "entry", eid, f["id"][1]):
            self.entries[eid] = Entry(eid, topic_id, questions, answer, cites, keywords,
                                      related, gap)

    def _phrasings(self, check: _Checker, eid: str, questions: tuple[str, ...],
                   lines: list[int], line: int | None) -> None:
        """A phrasing in two entries makes matching guess: warn the curator."""
        sites = tuple((check.name, lines[i] if i < len(lines) else line)
                      for i in range(len(questions)))
        self.phrasing_sites[eid] = sites
        for q, (_, q_line) in zip(questions, sites, strict=True):
            key = phrasing_key(q)
            owner = self.phrasing_owner.get(key)
            if owner is not None and owner[0] != eid:
                check.warn(q_line, eid, f"phrasing {q!r} duplicates one of entry "
                                        f"{owner[0]!r} ({owner[1]})")
            elif owner is not None:
                check.warn(q_line, eid, f"phrasing {q!r} is listed twice")
            else:
                self.phrasing_owner[key] = (eid, f"{check.name}:{q_line}")

    def _aliases_in_synonym_groups(self) -> list[Problem]:
        """The matcher joins a topic to any synonym group sharing one of its names, so the
        topic would become that ordinary word ("cainiao" as "delivery")."""
        groups = {" ".join(w.split()): group for group in self.synonyms for w in group}
        found = []
        for tid, topic in self.topics.items():
            file, line = self.defined_at[("topic", tid)]
            for name in (tid, *topic.aliases):
                group = groups.get(" ".join(name.lower().split()))
                if group is not None:
                    found.append(Problem(file, line, tid, f"alias {name!r} is also in the "
                                         f"synonym group [{', '.join(group)}]: the topic and "
                                         "those words would become one word", "warning"))
        return found

    def finish(self, directory: str, sources_dir: Path | None) -> KnowledgeBase:
        problems = self.problems
        known = {"source": self.sources, "topic": self.topics, "entry": self.entries}
        for ref in self.refs:
            if ref.target not in known[ref.kind] and (ref.kind, ref.target) not in \
                    self.defined_at:
                problems.append(Problem(ref.file, ref.line, ref.entry,
                                        f"unknown {ref.kind} {ref.target!r}"))
        if not self.sources and not any(p.severity == "error" for p in problems):
            problems.append(Problem(directory, None, None, "no sources are defined"))
        for file, line, tid, target in self.overview_refs:
            entry = self.entries.get(target)
            if entry is not None and entry.topic != tid:
                problems.append(Problem(file, line, tid, f"overview {target!r} is an entry of "
                                        f"topic {entry.topic!r}, not of {tid!r}"))
            if entry is not None and entry.gap:
                problems.append(Problem(file, line, tid, f"overview {target!r} is a gap entry: "
                                        "a topic's overview must answer"))
        topics = dict(self.topics)
        for tid, topic in topics.items():
            own = [e.id for e in self.entries.values() if e.topic == tid and not e.gap]
            if not own:
                file, line = self.defined_at[("topic", tid)]
                problems.append(Problem(file, line, tid, "topic has no entries", "warning"))
            elif topic.overview is None:
                topics[tid] = replace(topic, overview=own[0])
        problems.extend(self._aliases_in_synonym_groups())
        verified, reason = _verify_quotes(self.citation_sites, self.sources, sources_dir,
                                          problems)
        if any(p.severity == "error" for p in problems):
            raise KnowledgeError(problems)
        return KnowledgeBase(
            sources=MappingProxyType(self.sources),
            topics=MappingProxyType(topics),
            entries=MappingProxyType(self.entries),
            synonyms=tuple(self.synonyms),
            warnings=tuple(problems),
            quotes_verified=verified,
            quotes_total=len(self.citation_sites),
            unverified_reason=reason,
            _by_command=MappingProxyType({t.command: t for t in topics.values()}),
            sites=MappingProxyType({e: self.phrasing_sites.get(e, ()) for e in self.entries}),
        )


def phrasing_key(text: str) -> str:
    """A phrasing word for word: case and punctuation aside."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'"})


def normalize_for_quote(text: str) -> str:
    """Only whitespace and typographic apostrophes may differ between a quote and its source."""
    text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES)
    return " ".join(text.split())


def _verify_quotes(sites: list[tuple[str, int | None, str | None, Citation]],
                   sources: Mapping[str, Source], sources_dir: Path | None,
                   problems: list[Problem]) -> tuple[int, str | None]:
    if sources_dir is None:
        return 0, "SOURCES_DIR is not set, so quotes were not checked against the source texts"
    if not Path(sources_dir).is_dir():
        return 0, f"SOURCES_DIR {sources_dir} does not exist, so quotes were not checked"
    texts: dict[str, str | None] = {}
    for sid, source in sources.items():
        path = Path(sources_dir) / source.file if source.file else None
        try:
            texts[sid] = normalize_for_quote(path.read_text("utf-8")) if path else None
        except (OSError, UnicodeDecodeError):
            texts[sid] = None
    verified = 0
    missing: set[str] = set()
    for file, line, entry, cite in sites:
        text = texts.get(cite.source)
        if text is None:
            missing.add(cite.source)
            continue
        if normalize_for_quote(cite.quote) in text:
            verified += 1
        else:
            problems.append(Problem(file, line, entry, f"quote not found verbatim in source "
                                    f"{cite.source!r}: {cite.quote[:60]!r}"))
    reason = None
    if missing:
        reason = (f"no text in {sources_dir} for source(s) {', '.join(sorted(missing))}, "
                  "so their quotes were not checked")
    return verified, reason


@dataclass(frozen=True, slots=True)
class KnowledgeDiff:
    """What a reload changed, for the admin's reply."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    topics_changed: bool

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.topics_changed)


def diff_knowledge(old: KnowledgeBase, new: KnowledgeBase) -> KnowledgeDiff:
    return KnowledgeDiff(
        added=tuple(sorted(set(new.entries) - set(old.entries))),
        removed=tuple(sorted(set(old.entries) - set(new.entries))),
        changed=tuple(sorted(e for e in set(old.entries) & set(new.entries)
                             if old.entries[e] != new.entries[e])),
        topics_changed=dict(old.topics) != dict(new.topics),
    )
