"""Wiring the Telegram Application: settings, shared services, logging, polling and webhook."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, CallbackContext, ContextTypes, Defaults
from telegram.request import BaseRequest

from bot.config import Settings
from bot.knowledge import (
    KnowledgeBase,
    KnowledgeDiff,
    KnowledgeError,
    Problem,
    diff_knowledge,
    load_knowledge,
)
from bot.matching import Matcher
from bot.store import QueryLog
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
    store: QueryLog | None = None
    bot_username: str = ""
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    incidents: IncidentLog = field(default_factory=lambda: IncidentLog())

    @property
    def kb(self) -> KnowledgeBase:
        return self.matcher.kb


def services(context: ContextTypes.DEFAULT_TYPE | Application) -> Services:
    """The one typed accessor for the shared services."""
    bot_data = context.bot_data
    return bot_data[SERVICES_KEY]


# --- logging: the token never reaches a log line ------------------------------------------------


class IncidentLog:
    """One warning per incident instead of one per failed poll: Telegram's bad minutes make
    the updater fail every second or so, and a log flood hides everything else."""

    def __init__(self, quiet: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.quiet = quiet
        self.clock = clock
        self.last: float | None = None
        self.count = 0

    def report(self, error: BaseException) -> None:
        now = self.clock()
        if self.last is None or now - self.last > self.quiet:
            if self.count > 1:
                log.info("the previous Bot API incident had %d failures", self.count)
            self.count = 0
            log.warning("fetching updates failed (%s: %s); retrying until the Bot API is back",
                        type(error).__name__, error)
        else:
            log.debug("fetching updates failed again: %s", error)
        self.count += 1
        self.last = now



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
    return Services(settings=settings, matcher=Matcher(kb, settings.match_config()),
                    limiter=RateLimiter(limit=settings.user_rate_limit),
                    store=QueryLog(settings.data_dir))


ADMIN_COMMANDS = [BotCommand("reload", "Reload the knowledge base"),
                  BotCommand("stats", "Usage statistics"),
                  BotCommand("unanswered", "Questions I could not answer")]


def bot_commands(kb: KnowledgeBase) -> list[BotCommand]:
    commands = [BotCommand("ask", "Ask a question about the article"),
                BotCommand("help", "What I know and how to ask")]
    commands += [BotCommand(t.command, t.title[:256]) for t in kb.topics.values()]
    commands.append(BotCommand("sources", "The source documents"))
    return commands


async def set_commands(application: Application) -> None:
    """The command menu: topics for everyone, plus admin commands in each admin's own chat.

    The menu is only a convenience; admin rights are checked by numeric id on every call.
    A failure is logged, never fatal.
    """
    svc = services(application)
    public = bot_commands(svc.kb)
    try:
        await application.bot.set_my_commands(public, scope=BotCommandScopeDefault())
        for admin_id in sorted(svc.settings.admin_ids):
            await application.bot.set_my_commands(public + ADMIN_COMMANDS,
                                                  scope=BotCommandScopeChat(admin_id))
    except TelegramError as exc:
        log.warning("could not set the command menu: %s", exc)


async def post_init(application: Application) -> None:
    """Start-up work that needs the bot: its username, the command menu, background jobs."""
    svc = services(application)
    svc.bot_username = application.bot.username or ""
    await set_commands(application)
    if application.job_queue is not None:
        application.job_queue.run_repeating(prune_job, interval=86400, first=60,
                                            name="prune-query-log")
    if hasattr(signal, "SIGHUP"):
        try:
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP,
                lambda: application.create_task(reload_and_log(application, "SIGHUP")))
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals
            log.debug("SIGHUP reload not available in this process")
    log.info("bot @%s ready: %d topics, %d entries", svc.bot_username, len(svc.kb.topics),
             len(svc.kb.entries))


async def post_shutdown(application: Application) -> None:
    store = services(application).store
    if store is not None:
        store.close()


async def prune_job(context: CallbackContext) -> None:
    svc = services(context)
    if svc.store is not None:
        removed = await asyncio.to_thread(svc.store.prune, svc.settings.query_log_days)
        log.info("query log pruned: %s rows older than %d days", removed,
                 svc.settings.query_log_days)


# --- reloading the knowledge base ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    ok: bool
    seconds: float
    topics: int
    entries: int
    diff: KnowledgeDiff | None = None
    errors: tuple[Problem, ...] = ()


async def reload_knowledge(application: Application) -> ReloadOutcome:
    """Re-read and fully validate KNOWLEDGE_DIR, then swap the new base in at once.

    Loading runs in a thread, so questions keep being answered meanwhile, by the old base until
    the single assignment that installs the new one. On any error the old base stays.
    """
    svc = services(application)
    async with svc.reload_lock:
        started = time.perf_counter()
        old = svc.kb
        try:
            kb = await asyncio.to_thread(load_knowledge, svc.settings.knowledge_dir,
                                         svc.settings.sources_dir)
            matcher = await asyncio.to_thread(Matcher, kb, svc.settings.match_config())
        except KnowledgeError as exc:
            log.warning("reload refused, keeping the current knowledge base: %d error(s); "
                        "first: %s", len(exc.errors), exc.errors[0] if exc.errors else "?")
            return ReloadOutcome(False, time.perf_counter() - started, len(old.topics),
                                 len(old.entries), errors=exc.errors)
        svc.matcher = matcher
        diff = diff_knowledge(old, kb)
        if diff.topics_changed:
            await set_commands(application)
        outcome = ReloadOutcome(True, time.perf_counter() - started, len(kb.topics),
                                len(kb.entries), diff)
        log.info("knowledge base reloaded in %.0f ms: %d topics, %d entries (+%d -%d ~%d)",
                 outcome.seconds * 1000, outcome.topics, outcome.entries, len(diff.added),
                 len(diff.removed), len(diff.changed))
        return outcome


async def reload_and_log(application: Application, reason: str) -> ReloadOutcome:
    log.info("reloading the knowledge base (%s)", reason)
    return await reload_knowledge(application)


def knowledge_fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a curator saves a file: names, sizes and modification times."""
    try:
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                            for p in Path(directory).iterdir()
                            if p.suffix in {".yaml", ".yml"}))
    except OSError:
        return ()


def start_watching(application: Application, interval: float = 0.5, settle: float = 1.0) -> None:
    """Reload when a file under KNOWLEDGE_DIR changes, once it has stayed unchanged for
    `settle` seconds (an editor saving in several steps causes one reload, not several)."""
    directory = services(application).settings.knowledge_dir
    state = {"seen": knowledge_fingerprint(directory), "changed_at": None}

    async def watch(context: CallbackContext) -> None:
        current = knowledge_fingerprint(directory)
        now = time.monotonic()
        if current != state["seen"]:
            state["seen"], state["changed_at"] = current, now
        elif state["changed_at"] is not None and now - state["changed_at"] >= settle:
            state["changed_at"] = None
            await reload_and_log(application, "a file in KNOWLEDGE_DIR changed")

    application.job_queue.run_repeating(watch, interval=interval, first=interval,
                                        name="watch-knowledge")


def build_application(settings: Settings, svc: Services | None = None,
                      request: BaseRequest | None = None,
                      updates_request: BaseRequest | None = None) -> Application:
    """The bot, ready to run; `request` (and `updates_request` for getUpdates, default the
    same) replace the HTTP layer: tests use a fake Bot API or shorter timeouts."""
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
        .post_shutdown(post_shutdown)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(updates_request or request)
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


def run(settings: Settings, webhook: bool = False, watch: bool = False) -> None:
    application = build_application(settings)
    if watch:
        start_watching(application)
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
