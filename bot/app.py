"""Wiring the Telegram Application: settings, shared services, logging, polling and webhook."""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, Defaults
from telegram.request import BaseRequest

from bot.config import Settings
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.matching import Matcher
from bot.throttle import RateLimiter

log = logging.getLogger(__name__)
SERVICES_KEY = "services"
WEBHOOK_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@dataclass(slots=True)
class Services:
    """Everything the handlers share, kept in `application.bot_data`.

    The matcher (and with it the knowledge base) is replaced as a whole on reload: a handler
    reads `services.matcher` once and works with that object, so it never sees half a base.
    """

    settings: Settings
    matcher: Matcher
    limiter: RateLimiter
    bot_username: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def kb(self) -> KnowledgeBase:
        return self.matcher.kb


def services(context: ContextTypes.DEFAULT_TYPE | Application) -> Services:
    """The one typed accessor for the shared services."""
    bot_data = context.bot_data
    return bot_data[SERVICES_KEY]


# --- logging: the token never reaches a log line ------------------------------------------------


class RedactingFilter(logging.Filter):
    """Replaces secrets in every record, message, arguments and traceback alike.

    httpx logs each request URL at INFO and python-telegram-bot logs its API URL at DEBUG; both
    contain the bot token. Quieting those loggers is not enough (a traceback or a third-party
    DEBUG line can carry the URL too), so every handler gets this filter.
    """

    def __init__(self, secrets: list[str]):
        super().__init__()
        variants = set()
        for secret in filter(None, secrets):
            variants.update({secret, quote(secret, safe=""), quote(secret)})
        self._pattern = (re.compile("|".join(re.escape(v) for v in sorted(variants, key=len,
                                                                           reverse=True)))
                         if variants else None)

    def redact(self, text: str) -> str:
        return self._pattern.sub("[REDACTED]", text) if self._pattern else text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg, record.args = self.redact(message), None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def setup_logging(settings: Settings, stream: Any = None) -> RedactingFilter:
    """Root logging with the redacting filter on every handler, also ones added later by us."""
    redactor = RedactingFilter([settings.bot_token, settings.webhook_secret])
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # httpx's per-request INFO lines are noise; they stay redacted at DEBUG either way.
    if settings.log_level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return redactor


# --- the Application ----------------------------------------------------------------------------


def load_services(settings: Settings) -> Services:
    kb = load_knowledge(settings.knowledge_dir, settings.sources_dir)
    return Services(settings=settings, matcher=Matcher(kb),
                    limiter=RateLimiter(limit=settings.user_rate_limit))


def bot_commands(kb: KnowledgeBase) -> list[BotCommand]:
    commands = [BotCommand("ask", "Ask a question about the article"),
                BotCommand("help", "What I know and how to ask")]
    commands += [BotCommand(t.command, t.title[:256]) for t in kb.topics.values()]
    commands.append(BotCommand("sources", "The source documents"))
    return commands


async def post_init(application: Application) -> None:
    """Start-up work that needs the bot: its username and the command menu."""
    svc = services(application)
    svc.bot_username = application.bot.username or ""
    try:
        await application.bot.set_my_commands(bot_commands(svc.kb))
    except TelegramError as exc:  # a missing menu is cosmetic; the bot still answers
        log.warning("could not set the command menu: %s", exc)
    log.info("bot @%s ready: %d topics, %d entries", svc.bot_username, len(svc.kb.topics),
             len(svc.kb.entries))


def build_application(settings: Settings, svc: Services | None = None,
                      request: BaseRequest | None = None) -> Application:
    """The bot, ready to run; `request` replaces the HTTP layer (tests use a fake Bot API)."""
    from bot import handlers  # handlers import this module's accessor

    token = settings.require_token()
    builder = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_url.replace("/bot", "/file/bot", 1))
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .rate_limiter(AIORateLimiter(max_retries=3))
        .concurrent_updates(True)
        .post_init(post_init)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    application = builder.build()
    application.bot_data[SERVICES_KEY] = svc or load_services(settings)
    handlers.register(application)
    return application


def validate_webhook(settings: Settings) -> None:
    from bot.config import ConfigError

    if not settings.webhook_url.startswith("https://"):
        raise ConfigError("WEBHOOK_URL must be the public https:// address Telegram posts to")
    if not WEBHOOK_SECRET_RE.match(settings.webhook_secret):
        raise ConfigError("WEBHOOK_SECRET is required for webhook mode: 1-256 of A-Z, a-z, "
                          "0-9, _ and -")


def run(settings: Settings, webhook: bool = False) -> None:
    application = build_application(settings)
    if webhook:
        validate_webhook(settings)
        path = settings.webhook_url.split("://", 1)[1].partition("/")[2]
        application.run_webhook(
            listen=settings.webhook_listen, port=settings.webhook_port, url_path=path,
            webhook_url=settings.webhook_url, secret_token=settings.webhook_secret,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
