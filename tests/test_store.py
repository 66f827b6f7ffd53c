"""The query log: schema and migration, privacy, votes, pruning, and failing databases."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from bot.store import (
    DB_NAME,
    MIGRATIONS,
    SALT_NAME,
    SCHEMA_VERSION,
    QueryLog,
)

USER_ID = 987654321


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def record(log: QueryLog, question: str = "lazada ceo", answered: bool = True,
           user_id: int = USER_ID) -> int | None:
    return log.record(chat_type="private", question=question,
                      entry_id="lazada-ceo" if answered else None,
                      topic="lazada" if answered else None, score=90.0, answered=answered,
                      latency_ms=1.5, user_id=user_id)


def test_new_database_has_the_current_schema_in_wal_mode(tmp_path: Path):
    log = QueryLog(tmp_path)
    assert record(log) == 1
    with log.raw() as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"queries", "feedback"} <= tables


def test_old_database_is_migrated_and_keeps_its_rows(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO queries (ts, chat_type, question, score, answered, latency_ms, "
                 "user_hash) VALUES (1, 'private', 'old question', 0, 0, 1, 'x')")
    conn.commit()
    conn.close()
    log = QueryLog(tmp_path)
    assert [r.question for r in log.rows()] == ["old question"]
    with log.raw() as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert log.vote(1, USER_ID, 1)  # the migrated-in table works


def test_newer_schema_is_refused_without_crashing(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    log = QueryLog(tmp_path)
    assert record(log) is None
    assert log.errors == 1


def test_no_user_id_or_name_is_stored(tmp_path: Path):
    log = QueryLog(tmp_path)
    query_id = record(log, user_id=USER_ID)
    assert log.vote(query_id, USER_ID, 1)
    log.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(DB_NAME))
    assert raw and str(USER_ID).encode() not in raw
    rows = QueryLog(tmp_path).rows()
    assert rows[0].user_hash != str(USER_ID) and len(rows[0].user_hash) == 20


def test_salt_is_private_and_stable(tmp_path: Path):
    first = QueryLog(tmp_path).user_hash(USER_ID)
    assert QueryLog(tmp_path).user_hash(USER_ID) == first  # same salt after a restart
    assert stat.S_IMODE((tmp_path / SALT_NAME).stat().st_mode) == 0o600
    assert QueryLog(tmp_path / "other").user_hash(USER_ID) != first  # another deployment


def test_one_vote_per_user_and_answer_and_a_second_press_changes_it(tmp_path: Path):
    log = QueryLog(tmp_path)
    query_id = record(log)
    assert log.vote(query_id, USER_ID, 1)
    assert log.vote(query_id, USER_ID, -1)
    assert log.vote(query_id, 111, 1)
    assert not log.vote(query_id + 100, USER_ID, 1)  # unknown question
    assert not log.vote(query_id, USER_ID, 5)
    assert sorted(v for _, v in log.votes()) == [-1, 1]


def test_prune_removes_old_rows_and_their_votes(tmp_path: Path):
    clock = Clock()
    log = QueryLog(tmp_path, clock=clock)
    old = record(log, "old")
    log.vote(old, USER_ID, 1)
    clock.now += 91 * 86400
    record(log, "new")
    assert log.prune(90) == 1
    assert [r.question for r in log.rows()] == ["new"]
    assert log.votes() == []


def test_question_text_is_bounded(tmp_path: Path):
    log = QueryLog(tmp_path)
    record(log, "x" * 5000)
    assert len(log.rows()[0].question) == 500


def test_read_only_database_does_not_raise(tmp_path: Path):
    log = QueryLog(tmp_path)
    assert record(log) == 1
    with log.raw() as conn:  # the same refusal SQLite gives for a read-only file or mount
        conn.execute("PRAGMA query_only = ON")
    assert record(log) is None and log.errors == 1
    assert record(log) == 2  # the connection is reopened afterwards and works again


def test_unusable_database_path_does_not_raise(tmp_path: Path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    log = QueryLog(blocker)
    for _ in range(5):
        assert record(log) is None
    assert log.rows() is None and log.prune(90) is None and not log.vote(1, USER_ID, 1)
    assert log.errors >= 5
    # one warning per kind of failure, not one per question
    assert sum("query log: record failed" in r.getMessage() for r in caplog.records) == 1


def test_corrupt_database_does_not_raise(tmp_path: Path):
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    log = QueryLog(tmp_path)
    assert record(log) is None
    assert log.errors == 1


def test_locked_database_does_not_raise(tmp_path: Path):
    log = QueryLog(tmp_path)
    record(log)
    log.close()
    blocker = sqlite3.connect(tmp_path / DB_NAME, timeout=0, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        waiting = QueryLog(tmp_path)
        assert record(waiting) is None and waiting.errors == 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
