"""All settings in one place, read from the environment and an optional `.env` file."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from dotenv import dotenv_values

from bot.matching import MatchConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"
DEFAULT_BASE_URL = "https://api.telegram.org/bot"

# BotFather tokens look like "123456789:AA...": a numeric bot id, a colon, 30+ url-safe characters.
TOKEN_RE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{30,}$")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is safe to print (never holds a token)."""


def mask_token(token: str) -> str:
    """Enough of a token to recognise it in a message, never enough to use it."""
    if not token:
        return "(empty)"
    bot_id = token.split(":", 1)[0]
    return f"{bot_id[:4]}…(hidden)" if bot_id.isdigit() else "(hidden)"


@dataclass(frozen=True, slots=True)
class Settings:
    bot_token: str = ""
    admin_ids: frozenset[int] = frozenset()
    telegram_base_url: str = DEFAULT_BASE_URL
    knowledge_dir: Path = DEFAULT_KNOWLEDGE_DIR
    sources_dir: Path | None = None
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    query_log_days: int = 90
    user_rate_limit: int = 20
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str = ""
    answer_threshold: float | None = None  # None: the tuned default in MatchConfig

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, dotenv_path: Path | None = Path(".env")
    ) -> Settings:
        """Process environment wins over `.env`, so a deploy can override a checked-out file."""
        values: dict[str, str] = {}
        if dotenv_path is not None and dotenv_path.is_file():
            values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        values.update(os.environ if env is None else env)

        def get(name: str, default: str = "") -> str:
            return values.get(name, default).strip()

        sources = get("SOURCES_DIR")
        return cls(
            bot_token=get("BOT_TOKEN"),
            admin_ids=_parse_ids(get("ADMIN_IDS")),
            telegram_base_url=get("TELEGRAM_BASE_URL") or DEFAULT_BASE_URL,
            knowledge_dir=Path(get("KNOWLEDGE_DIR") or DEFAULT_KNOWLEDGE_DIR),
            sources_dir=Path(sources) if sources else None,
            data_dir=Path(get("DATA_DIR") or "data"),
            log_level=_parse_level(get("LOG_LEVEL") or "INFO"),
            query_log_days=_parse_int("QUERY_LOG_DAYS", get("QUERY_LOG_DAYS"), 90, minimum=1),
            user_rate_limit=_parse_int("USER_RATE_LIMIT", get("USER_RATE_LIMIT"), 20, minimum=1),
            webhook_url=get("WEBHOOK_URL"),
            webhook_listen=get("WEBHOOK_LISTEN") or "127.0.0.1",
            webhook_port=_parse_int("WEBHOOK_PORT", get("WEBHOOK_PORT"), 8443, minimum=1),
            webhook_secret=get("WEBHOOK_SECRET"),
            answer_threshold=_parse_probability("ANSWER_THRESHOLD", get("ANSWER_THRESHOLD")),
        )

    def match_config(self) -> MatchConfig:
        """The matcher's tuned weights, with the admin's answer threshold if one is set."""
        config = MatchConfig()
        if self.answer_threshold is None:
            return config
        return replace(config, confidence_threshold=self.answer_threshold)

    def require_token(self) -> str:
        """Only `run` needs a token; everything offline works without one."""
        if not self.bot_token:
            raise ConfigError("BOT_TOKEN is not set: put the token from @BotFather in .env")
        if not TOKEN_RE.match(self.bot_token):
            raise ConfigError(
                f"BOT_TOKEN {mask_token(self.bot_token)} is malformed: expected "
                "'<digits>:<secret>' as @BotFather gives it"
            )
        return self.bot_token


def _parse_ids(raw: str) -> frozenset[int]:
    ids = set()
    for part in filter(None, (p.strip() for p in raw.split(","))):
        if not part.lstrip("-").isdigit():
            raise ConfigError(f"ADMIN_IDS must be numeric Telegram user ids, got {part!r}")
        ids.add(int(part))
    return frozenset(ids)


def _parse_int(name: str, raw: str, default: int, *, minimum: int) -> int:
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _parse_probability(name: str, raw: str) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number between 0 and 1, got {raw!r}") from None
    if not 0 < value < 1:
        raise ConfigError(f"{name} must be between 0 and 1 (exclusive), got {value}")
    return value


def _parse_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level
