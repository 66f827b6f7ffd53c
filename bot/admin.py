"""Admin commands: reload the knowledge base live, usage statistics, unanswered questions.

Rights are checked by numeric Telegram user id (ADMIN_IDS) on every call; usernames are never
trusted, since they can be changed or reused.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.app import ReloadOutcome, reload_knowledge, services
from bot.formatting import esc
from bot.handlers import send
from bot.reports import group_unanswered, stats_snapshot, stats_text, unanswered_text

log = logging.getLogger(__name__)

REFUSAL = "Sorry, that command is only for the bot's admins."
MAX_ERRORS_SHOWN = 20
MAX_IDS_SHOWN = 30


def is_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    user = update.effective_user
    allowed = user is not None and user.id in services(context).settings.admin_ids
    if not allowed:
        log.warning("refused admin command %r from user id %s",
                    (update.effective_message.text or "")[:40] if update.effective_message
                    else "", user.id if user else None)
    return allowed


def reload_reply(outcome: ReloadOutcome) -> str:
    ms = f"{outcome.seconds * 1000:.0f} ms"
    if not outcome.ok:
        shown = outcome.errors[:MAX_ERRORS_SHOWN]
        lines = [f"<b>Reload refused</b>: {len(outcome.errors)} error(s), still serving the "
                 f"previous knowledge base ({outcome.topics} topics, {outcome.entries} entries)."]
        lines += [f"• {esc(str(p))}" for p in shown]
        if len(outcome.errors) > len(shown):
            lines.append(f"… and {len(outcome.errors) - len(shown)} more "
                         "(run <i>python -m bot check</i>)")
        return "\n".join(lines)
    diff = outcome.diff
    lines = [f"<b>Reloaded</b> in {ms}: {outcome.topics} topics, {outcome.entries} entries."]
    if diff is None or diff.empty:
        lines.append("Nothing changed.")
    else:
        for label, ids in (("Added", diff.added), ("Removed", diff.removed),
                           ("Changed", diff.changed)):
            if ids:
                more = f" … (+{len(ids) - MAX_IDS_SHOWN})" if len(ids) > MAX_IDS_SHOWN else ""
                lines.append(f"{label} ({len(ids)}): "
                             f"{esc(', '.join(ids[:MAX_IDS_SHOWN]))}{more}")
        if diff.topics_changed:
            lines.append("Topics changed: the command menu was updated.")
    return "\n".join(lines)


Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def admin_only(handler: Handler) -> Handler:
    """Checks the numeric user id on every call; everyone else gets a short refusal."""

    @functools.wraps(handler)
    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not is_admin(update, context):
            await send(update.effective_message, esc(REFUSAL))
            return
        await handler(update, context)

    return guarded


NO_LOG = "The query log is not available right now."


@admin_only
async def reload_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    outcome = await reload_knowledge(context.application)
    await send(update.effective_message, reload_reply(outcome))


@admin_only
async def stats_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    store = services(context).store
    rows = await asyncio.to_thread(store.rows) if store else None
    votes = await asyncio.to_thread(store.votes) if store else None
    if rows is None or votes is None:
        await send(update.effective_message, NO_LOG)
        return
    text = stats_text(stats_snapshot(rows, votes, time.time()))
    failures = store.errors if store else 0
    if failures:
        text += f"\nQuery log errors since start: {failures}"
    await send(update.effective_message, esc(text))


@admin_only
async def unanswered_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    store = services(context).store
    days = 30
    rows = await asyncio.to_thread(store.rows, time.time() - days * 86400) if store else None
    if rows is None:
        await send(update.effective_message, NO_LOG)
        return
    groups = group_unanswered(rows)
    await send(update.effective_message,
               f"<b>Unanswered in the last {days} days</b>, most frequent first:\n"
               f"{esc(unanswered_text(groups))}")


def register(application: Application) -> None:
    """Admin commands go before the generic topic-command handler, in the same group."""
    application.add_handler(CommandHandler("reload", reload_command), group=-1)
    application.add_handler(CommandHandler("stats", stats_command), group=-1)
    application.add_handler(CommandHandler("unanswered", unanswered_command), group=-1)
