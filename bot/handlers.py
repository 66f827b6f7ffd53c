"""Telegram handlers: each translates between an update and the pure core, and nothing more."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatType
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.app import Services, services
from bot.formatting import (
    Button,
    answer_html,
    entry_button,
    entry_html,
    entry_title,
    esc,
    help_html,
    sources_html,
    split_message,
    topic_card_html,
    topics_buttons,
)
from bot.knowledge import RESERVED_COMMANDS
from bot.throttle import Verdict

log = logging.getLogger(__name__)
T = TypeVar("T")

SLOW_DOWN = "You're asking faster than I can keep up. Please wait a minute and ask again."
STALE_BUTTON = "That button is from an older version of my notes. Please ask again."
ERROR_REPLY = "Sorry, something went wrong on my side. Please try again."
THANKS = "Thanks for the feedback!"
VOTE_FAILED = "Sorry, I couldn't record that vote."
ASK_USAGE = "Ask me a question after the command, e.g. <i>/ask who runs Lazada?</i>"
INLINE_RESULTS = 5


def keyboard(buttons: list[Button], feedback: list[Button] | None = None
             ) -> InlineKeyboardMarkup | None:
    """One button a row for questions; the 👍/👎 pair shares the last row."""
    rows = [[InlineKeyboardButton(label, callback_data=data)] for label, data in buttons]
    if feedback:
        rows.append([InlineKeyboardButton(label, callback_data=data) for label, data in feedback])
    return InlineKeyboardMarkup(rows) if rows else None


def feedback_buttons(query_id: int | None) -> list[Button]:
    if query_id is None:
        return []
    return [("👍", f"v:{query_id}:1"), ("👎", f"v:{query_id}:-1")]


async def send(message: Message, text: str, buttons: list[Button] | None = None,
               feedback: list[Button] | None = None) -> None:
    """Reply to a message (in its forum topic), split under Telegram's 4096 characters;
    the buttons go with the last part."""
    parts = split_message(text)
    quote = message.chat.type != ChatType.PRIVATE
    for i, part in enumerate(parts):
        markup = keyboard(buttons or [], feedback) if i == len(parts) - 1 else None
        await with_retries(lambda part=part, markup=markup: message.reply_text(
            part, reply_markup=markup, do_quote=quote, disable_web_page_preview=True))


SEND_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


async def with_retries(call: Callable[[], Awaitable[T]]) -> T:
    """Retry a send through Telegram's bad minutes (5xx, dropped connections, timeouts,
    garbled responses); 429s are already waited out by the AIORateLimiter. A request Telegram
    refused for what it is (BadRequest, Forbidden) is not retried.

    A timed-out send may in rare cases have reached Telegram after all; answering twice is
    the lesser evil than not answering, and the fake Bot API tests both paths.
    """
    for delay in (*SEND_RETRY_DELAYS, None):
        try:
            return await call()
        except (BadRequest, Forbidden, InvalidToken):
            raise
        except TelegramError as exc:
            if delay is None or not _transient(exc):
                raise
            log.debug("send failed (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def _transient(exc: TelegramError) -> bool:
    return isinstance(exc, NetworkError | RetryAfter) or "Invalid server response" in str(exc)


def _allowed(update: Update, svc: Services) -> Verdict:
    user = update.effective_user
    return svc.limiter.check(user.id) if user else Verdict.ALLOW


async def answer_question(update: Update, context: ContextTypes.DEFAULT_TYPE, question: str,
                          topic: str | None = None) -> None:
    message = update.effective_message
    if message is None:
        return
    svc = services(context)
    verdict = _allowed(update, svc)
    if verdict is Verdict.NOTIFY:
        await send(message, esc(SLOW_DOWN))
    if verdict is not Verdict.ALLOW:
        return
    matcher = svc.matcher  # one consistent knowledge base for this whole answer
    started = time.perf_counter()
    result = matcher.match(question, topic)
    latency_ms = (time.perf_counter() - started) * 1000
    text, buttons = answer_html(matcher.kb, result)
    query_id = None
    if svc.store is not None and result.kind in {"answer", "gap", "abstain"}:
        user = update.effective_user
        query_id = await asyncio.to_thread(
            svc.store.record, chat_type=message.chat.type, question=question,
            # a known gap is logged unanswered, with the gap it hit for /unanswered to show
            entry_id=result.entry.id if result.entry else None,
            topic=result.entry.topic if result.entry else None,
            score=result.score, answered=result.answered, latency_ms=latency_ms,
            user_id=user.id if user else None)
    await send(message, text, buttons,
               feedback_buttons(query_id) if result.answered else None)
    log.info("question answered=%s entry=%s score=%.1f in %.1f ms", result.answered,
             result.best_id, result.score, latency_ms)


# --- commands -----------------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    kb = svc.kb
    payload = context.args[0].lower() if context.args else ""
    topic = kb.topics.get(payload) or kb.topic_for_command(payload) if payload else None
    if topic is not None:
        text, buttons = topic_card_html(kb, topic)
        await send(update.effective_message, text, buttons)
        return
    await help_command(update, context)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    await send(update.effective_message, help_html(svc.kb, svc.bot_username),
               topics_buttons(svc.kb))


async def sources_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await send(update.effective_message, sources_html(services(context).kb))


async def ask_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    question = " ".join(context.args or [])
    if not question.strip():
        await send(update.effective_message, ASK_USAGE)
        return
    await answer_question(update, context, question)


async def topic_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/miravia shows the topic card; /miravia coupon answers within the topic.

    Topic commands come from the knowledge base, so they are looked up on each message rather
    than registered once: a reload that adds or renames a topic takes effect at once.
    """
    message = update.effective_message
    if message is None or not message.text:
        return
    svc = services(context)
    head, _, rest = message.text.partition(" ")
    command, _, addressee = head[1:].partition("@")
    if addressee and addressee.lower() != svc.bot_username.lower():
        return  # meant for another bot in the group
    if command.lower() in RESERVED_COMMANDS:
        return  # the bot's own commands have their own handlers
    topic = svc.kb.topic_for_command(command)
    if topic is None:
        if message.chat.type == ChatType.PRIVATE:
            await send(message, f"I don't know the command /{esc(command[:64])}. Try /help.")
        return
    if rest.strip():
        await answer_question(update, context, rest, topic.id)
    else:
        text, buttons = topic_card_html(svc.kb, topic)
        await send(message, text, buttons)


# --- plain messages -----------------------------------------------------------------------------


async def private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await answer_question(update, context, update.effective_message.text or "")


def _addressed_text(message: Message, bot_id: int, username: str) -> str | None:
    """The question in a group message meant for the bot, or None if it is chatter."""
    text = message.text or ""
    mention = f"@{username}".lower() if username else None
    addressed = False
    for entity in message.entities:
        if (entity.type == MessageEntity.MENTION and mention
                and message.parse_entity(entity).lower() == mention):
            addressed = True
            text = text.replace(message.parse_entity(entity), " ")
        elif entity.type == MessageEntity.TEXT_MENTION and entity.user and \
                entity.user.id == bot_id:
            addressed = True
    reply = message.reply_to_message
    if reply and reply.from_user and reply.from_user.id == bot_id:
        addressed = True
    return " ".join(text.split()) if addressed else None


async def group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    question = _addressed_text(message, context.bot.id, services(context).bot_username)
    if question is None:
        return  # ordinary chatter: never answered, even with privacy mode off
    if not question:
        await help_command(update, context)
        return
    await answer_question(update, context, question)


# --- buttons and inline mode --------------------------------------------------------------------


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    svc = services(context)
    kind, _, key = (query.data or "").partition(":")
    kb = svc.kb
    if kind == "v":
        await vote(update, svc, key)
        return
    if kind == "a" and key in kb.entries:
        entry = kb.entries[key]
        text = entry_html(kb, entry)
        buttons = [entry_button(kb, s.entry_id) for s in svc.matcher.related(entry)]
    elif kind == "t" and key in kb.topics:
        text, buttons = topic_card_html(kb, kb.topics[key])
    else:
        await query.answer(STALE_BUTTON, show_alert=False)
        return
    await query.answer()
    if query.message is not None and isinstance(query.message, Message):
        await send(query.message, text, buttons)


async def vote(update: Update, svc: Services, key: str) -> None:
    """👍/👎: stored against the logged question, acknowledged without a new message."""
    query = update.callback_query
    query_id, _, value = key.partition(":")
    ok = (svc.store is not None and query_id.isdigit() and value in {"1", "-1"}
          and await asyncio.to_thread(svc.store.vote, int(query_id),
                                      update.effective_user.id if update.effective_user
                                      else None, int(value)))
    await query.answer(THANKS if ok else VOTE_FAILED)


async def inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.inline_query
    svc = services(context)
    matcher = svc.matcher
    kb = matcher.kb
    text = (query.query or "").strip()
    results = []
    if not text:
        for topic in kb.topics.values():
            card, _ = topic_card_html(kb, topic)
            results.append(InlineQueryResultArticle(
                id=f"t:{topic.id}", title=topic.title, description=topic.summary[:100],
                input_message_content=InputTextMessageContent(split_message(card)[0])))
    else:
        for entry in matcher.best_entries(text, INLINE_RESULTS):
            results.append(InlineQueryResultArticle(
                id=f"a:{entry.id}", title=entry_title(entry), description=entry.answer[:100],
                input_message_content=InputTextMessageContent(
                    split_message(entry_html(kb, entry))[0])))
    await query.answer(results, cache_time=30, is_personal=False)


# --- errors -------------------------------------------------------------------------------------


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log first, with the traceback; the user only hears that something went wrong."""
    if update is None and isinstance(context.error, TelegramError):
        services(context).incidents.report(context.error)  # the updater retries by itself
        return
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None:
        try:
            await update.effective_message.reply_text(ERROR_REPLY)
        except TelegramError:
            log.warning("could not tell the user about the error")
    elif isinstance(update, Update) and update.callback_query is not None:
        try:
            await update.callback_query.answer(ERROR_REPLY)
        except TelegramError:
            log.warning("could not answer the callback query after an error")


def register(application: Application) -> None:
    private = filters.ChatType.PRIVATE
    groups = filters.ChatType.GROUPS
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("help", help_command))
    application.add_handler(CommandHandler("sources", sources_command))
    application.add_handler(CommandHandler("ask", ask_command))
    application.add_handler(MessageHandler(filters.COMMAND & filters.TEXT, topic_command))
    application.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND,
                                           private_text))
    application.add_handler(MessageHandler(groups & filters.TEXT & ~filters.COMMAND, group_text))
    application.add_handler(CallbackQueryHandler(button))
    application.add_handler(InlineQueryHandler(inline_query))
    application.add_error_handler(on_error)
    from bot import admin  # admin's handlers reuse `send` from this module

    admin.register(application)
