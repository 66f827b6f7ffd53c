"""The query log: what people asked, what the bot answered, and how they voted.

An embedded SQLite database in DATA_DIR (WAL, schema versioned with PRAGMA user_version and
migrated on open). No user names or ids are stored: distinct users are counted by a salted hash,
with the salt kept beside the database, so the log can not be joined back to Telegram accounts.

A failing database (locked, read-only, full, corrupt, missing) never stops an answer: every
operation catches the error, logs it (once per kind of failure, not once per question), counts
it, and returns None.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

DB_NAME = "queries.sqlite3"
SALT_NAME = "salt"
MAX_QUESTION_CHARS = 500

# Each migration takes the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE queries (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        chat_type TEXT NOT NULL,
        question TEXT NOT NULL,
        entry_id TEXT,
        topic TEXT,
        score REAL NOT NULL,
        answered INTEGER NOT NULL,
        latency_ms REAL NOT NULL,
        user_hash TEXT NOT NULL
    );
    CREATE INDEX queries_ts ON queries (ts);
    """,
    """
    CREATE TABLE feedback (
        query_id INTEGER NOT NULL REFERENCES queries (id) ON DELETE CASCADE,
        user_hash TEXT NOT NULL,
        vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        ts REAL NOT NULL,
        PRIMARY KEY (query_id, user_hash)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class QueryRow:
    id: int
    ts: float
    chat_type: str
    question: str
    entry_id: str | None
    topic: str | None
    score: float
    answered: bool
    latency_ms: float
    user_hash: str


class QueryLog:
    """Thread-safe (one connection behind a lock); cheap enough to call from handlers."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        self.clock = clock
        self.errors = 0
        self._reported: set[str] = set()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._salt: bytes | None = None

    # --- plumbing --------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=2.0, check_same_thread=False,
                                   isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _safely(self, what: str, action: Callable[[sqlite3.Connection], T]) -> T | None:
        try:
            with self._lock:
                return action(self._connect())
        except (sqlite3.Error, OSError) as exc:
            self.errors += 1
            kind = f"{what}:{type(exc).__name__}:{exc}"
            if kind not in self._reported:  # one warning per kind of failure, not per question
                self._reported.add(kind)
                log.warning("query log: %s failed (%s: %s); answering goes on without it",
                            what, type(exc).__name__, exc)
            self._close_quietly()
            return None

    def _close_quietly(self) -> None:
        if self._conn is not None:
            with suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

    def user_hash(self, user_id: int | None) -> str:
        """A salted hash: counts distinct users without storing who they are."""
        if user_id is None:
            return "anonymous"
        if self._salt is None:
            self._salt = self._load_salt()
        return hashlib.sha256(self._salt + str(user_id).encode()).hexdigest()[:20]

    def _load_salt(self) -> bytes:
        path = self.data_dir / SALT_NAME
        try:
            return bytes.fromhex(path.read_text().strip())
        except (OSError, ValueError):
            pass
        salt = secrets.token_bytes(32)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(salt.hex())
        except OSError as exc:  # unwritable: a salt for this run only, still never the raw id
            self.errors += 1
            log.warning("query log: could not save the salt (%s)", exc)
        return salt

    # --- writing ---------------------------------------------------------------------------

    def record(self, *, chat_type: str, question: str, entry_id: str | None,
               topic: str | None, score: float, answered: bool, latency_ms: float,
               user_id: int | None) -> int | None:
        """Log one question; returns its row id (for feedback buttons), or None on failure."""
        row = (self.clock(), chat_type, question[:MAX_QUESTION_CHARS], entry_id, topic,
               float(score), int(answered), float(latency_ms), self.user_hash(user_id))
        return self._safely("record", lambda c: c.execute(
            "INSERT INTO queries (ts, chat_type, question, entry_id, topic, score, answered, "
            "latency_ms, user_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row).lastrowid)

    def vote(self, query_id: int, user_id: int | None, vote: int) -> bool:
        """One vote per user per answer; pressing again changes it."""
        if vote not in (-1, 1):
            return False
        user = self.user_hash(user_id)

        def act(c: sqlite3.Connection) -> bool:
            if c.execute("SELECT 1 FROM queries WHERE id = ?", (query_id,)).fetchone() is None:
                return False
            c.execute("INSERT INTO feedback (query_id, user_hash, vote, ts) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (query_id, user_hash) DO UPDATE SET vote = excluded.vote, "
                      "ts = excluded.ts", (query_id, user, vote, self.clock()))
            return True

        return bool(self._safely("vote", act))

    def prune(self, days: int) -> int | None:
        cutoff = self.clock() - days * 86400
        return self._safely("prune", lambda c: c.execute(
            "DELETE FROM queries WHERE ts < ?", (cutoff,)).rowcount)

    # --- reading ---------------------------------------------------------------------------

    def rows(self, since: float | None = None) -> list[QueryRow] | None:
        def act(c: sqlite3.Connection) -> list[QueryRow]:
            cur = c.execute("SELECT id, ts, chat_type, question, entry_id, topic, score, "
                            "answered, latency_ms, user_hash FROM queries WHERE ts >= ? "
                            "ORDER BY id", (since or 0.0,))
            return [QueryRow(*r[:7], bool(r[7]), *r[8:]) for r in cur]

        return self._safely("read", act)

    def votes(self, since: float | None = None) -> list[tuple[str | None, int]] | None:
        """(entry id, vote) for every vote on questions asked since `since`."""
        return self._safely("read", lambda c: c.execute(
            "SELECT q.entry_id, f.vote FROM feedback f JOIN queries q ON q.id = f.query_id "
            "WHERE q.ts >= ?", (since or 0.0,)).fetchall())

    @contextmanager
    def raw(self) -> Iterator[sqlite3.Connection]:
        """Direct access for tests and maintenance."""
        with self._lock:
            yield self._connect()


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION, one migration at a time, each in a transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"database schema {version} is newer than this bot "
                                    f"({SCHEMA_VERSION}); upgrade the bot")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN")
        try:
            for statement in filter(str.strip, MIGRATIONS[target - 1].split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("query log schema migrated to version %d", target)
    return SCHEMA_VERSION
