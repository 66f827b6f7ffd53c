"""Per-user question limit: protects the bot (and its flood budget) from one spamming user."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    ALLOW = "allow"
    NOTIFY = "notify"  # the first refused question of a window: tell the user once
    DROP = "drop"  # further ones: ignore silently


@dataclass(slots=True)
class _Window:
    start: float
    count: int = 0
    notified: bool = False


@dataclass(slots=True)
class RateLimiter:
    """At most `limit` questions per user in a fixed window of `window` seconds."""

    limit: int = 20
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    max_users: int = 100_000
    _users: dict[int, _Window] = field(default_factory=dict)

    def check(self, user_id: int) -> Verdict:
        now = self.clock()
        state = self._users.get(user_id)
        if state is None or now - state.start >= self.window:
            if len(self._users) >= self.max_users:
                self._prune(now)
            state = self._users[user_id] = _Window(now)
        state.count += 1
        if state.count <= self.limit:
            return Verdict.ALLOW
        if not state.notified:
            state.notified = True
            return Verdict.NOTIFY
        return Verdict.DROP

    def _prune(self, now: float) -> None:
        """Forget users whose window has passed, so memory stays bounded."""
        self._users = {u: s for u, s in self._users.items() if now - s.start < self.window}
