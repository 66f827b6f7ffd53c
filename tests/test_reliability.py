"""Telegram's bad minutes and heavy use: the bot keeps answering, each question exactly once."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from telegram.request import HTTPXRequest

from bot.app import build_application, load_services, post_init
from bot.config import Settings
from tests import fake_bot_api as tg
from tests.bot_process import BotProcess
from tests.test_admin import copy_knowledge

TOKEN = "222333444:AAReliabilityTestToken_abcdefghijklmnop"
ADMIN = 9999


class PollingBot:
    """The real Application polling the HTTP fake, in this event loop, with short timeouts."""

    def __init__(self, fake: tg.FakeBotAPI, settings: Settings):
        self.fake = fake
        settings = replace(settings, telegram_base_url=fake.base_url)
        self.app = build_application(
            settings, load_services(settings),
            request=HTTPXRequest(connection_pool_size=64, read_timeout=1.0, connect_timeout=1.0),
            updates_request=HTTPXRequest(read_timeout=2.0, connect_timeout=1.0))

    async def __aenter__(self) -> PollingBot:
        await self.app.initialize()
        await post_init(self.app)
        await self.app.updater.start_polling(
            poll_interval=0.0, timeout=1,
            error_callback=lambda exc: self.app.create_task(self.app.process_error(None, exc)))
        await self.app.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.updater.stop()
        await self.app.stop()
        await self.app.shutdown()

    async def answered(self, expected: int, timeout: float = 30) -> bool:
        return await asyncio.to_thread(self.fake.wait_for, lambda calls: sum(
            c.method == "sendMessage" for c in calls) >= expected, timeout)


@pytest.fixture
def settings(tmp_path: Path, sources_dir: Path) -> Settings:
    return Settings(bot_token=TOKEN, admin_ids=frozenset({ADMIN}),
                    knowledge_dir=copy_knowledge(tmp_path), sources_dir=sources_dir,
                    data_dir=tmp_path / "data", user_rate_limit=1000)


@pytest.fixture
async def fake() -> AsyncIterator[tg.FakeBotAPI]:
    server = tg.FakeBotAPI(TOKEN).serve()
    yield server
    server.close()


FAULTS = {
    "500": lambda: tg.error(500, "Internal Server Error"),
    "502 html": lambda: tg.Raw(b"<html><body>502 Bad Gateway</body></html>", 502),
    "malformed json": lambda: tg.Raw(b'{"ok": true, "result": [tru'),
    "dropped connection": tg.Drop,
    "timeout": lambda: tg.Delay(1.5),
    "429": lambda: tg.error(429, "Too Many Requests: retry after 1", retry_after=1),
}


def assert_no_flood(caplog: pytest.LogCaptureFixture, faults: int) -> None:
    """Nothing of ours at ERROR; python-telegram-bot's own lines at most one per fault."""
    assert not [r for r in caplog.records if r.name.startswith("bot") and
                r.levelno >= logging.ERROR], caplog.text
    theirs = [r for r in caplog.records if r.name.startswith("telegram") and
              r.levelno >= logging.WARNING]
    assert len(theirs) <= faults, caplog.text


def answers_per_chat(fake: tg.FakeBotAPI) -> dict[int, int]:
    counts: dict[int, int] = {}
    for call in fake.sent():
        counts[int(call.params["chat_id"])] = counts.get(int(call.params["chat_id"]), 0) + 1
    return counts


def feed_questions(fake: tg.FakeBotAPI, chats: range) -> None:
    for chat in chats:
        fake.add_update(tg.message("lazda ceo", chat_id=chat, user_id=chat, message_id=chat))


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_send_message_faults_are_retried_and_answered_once(fake, settings, kind, caplog):
    caplog.set_level(logging.WARNING)
    fake.faults["sendMessage"] = [tg.fail_first(2, FAULTS[kind])]
    async with PollingBot(fake, settings) as bot:
        feed_questions(fake, range(100, 106))
        assert await bot.answered(6)
        await asyncio.sleep(0.3)
    assert answers_per_chat(fake) == {chat: 1 for chat in range(100, 106)}
    assert_no_flood(caplog, faults=2)


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_get_updates_faults_keep_polling_without_a_log_flood(fake, settings, kind, caplog):
    caplog.set_level(logging.DEBUG)
    fake.faults["getUpdates"] = [tg.fail_first(3, FAULTS[kind])]
    async with PollingBot(fake, settings) as bot:
        feed_questions(fake, range(200, 205))  # sent during the fault window
        assert await bot.answered(5, timeout=40)
        await asyncio.sleep(0.3)
    assert answers_per_chat(fake) == {chat: 1 for chat in range(200, 205)}
    ours = [r for r in caplog.records if r.name.startswith("bot") and r.levelno >= logging.WARNING]
    assert len(ours) <= 1  # one warning for the incident, not one per failed poll
    assert_no_flood(caplog, faults=3)


async def test_load_with_a_reload_in_the_middle(fake, settings, caplog):
    """50 chats x 20 questions, a /reload halfway: every question gets exactly one answer."""
    caplog.set_level(logging.WARNING)
    questions = ["lazda ceo", "miravia coupon", "trendyol germany target", "weather in madrid",
                 "what is cainiao doing in brazil"]
    async with PollingBot(fake, settings) as bot:
        for round_ in range(20):
            for chat in range(1000, 1050):
                fake.add_update(tg.message(questions[(chat + round_) % len(questions)],
                                           chat_id=chat, user_id=chat, message_id=round_ + 1))
            if round_ == 10:
                fake.add_update(tg.message("/reload", chat_id=ADMIN, user_id=ADMIN))
        assert await bot.answered(1001, timeout=60)
        await asyncio.sleep(0.5)
    counts = answers_per_chat(fake)
    assert counts.pop(ADMIN) == 1
    assert counts == {chat: 20 for chat in range(1000, 1050)}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_memory_does_not_grow_across_runs(fake, settings):
    async def one_run(first_chat: int) -> None:
        async with PollingBot(fake, settings) as bot:
            before = len(fake.sent())
            for chat in range(first_chat, first_chat + 100):
                fake.add_update(tg.message("miravia coupon", chat_id=chat, user_id=chat))
            assert await bot.answered(before + 100)

    # traced from before the warm-up (caches, imports, connection pools): the last run's
    # services stay referenced until the next run replaces them, so the baseline holds one set
    # of them, as the end does, and only what piles up run after run counts as growth
    tracemalloc.start()
    await one_run(10_000)
    gc.collect()
    baseline = tracemalloc.get_traced_memory()[0]
    for run in range(2):
        await one_run(20_000 + run * 1000)
    gc.collect()
    growth = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    recorded = 2 * 100 * 2000  # what the fake itself keeps: about 2 kB per recorded call
    assert growth < recorded + 5 * 2**20, f"grew {growth / 2**20:.1f} MB"


def test_sigterm_stops_within_5_seconds_without_losing_updates(tmp_path, sources_dir):
    fake = tg.FakeBotAPI(TOKEN).serve()
    bot = BotProcess(tmp_path, sources_dir, fake, TOKEN)
    try:
        assert fake.wait_for(lambda calls: any(c.method == "setMyCommands" for c in calls),
                             timeout=30)
        for chat in range(300, 340):
            fake.add_update(tg.message("trendyol germany target", chat_id=chat, user_id=chat))
        assert fake.wait_for(lambda calls: any(c.method == "sendMessage" for c in calls))
        started = time.monotonic()
        bot.signal(signal.SIGTERM)
        bot.proc.wait(timeout=5)
        stopped_in = time.monotonic() - started
    finally:
        log = bot.stop()
        fake.close()
    assert stopped_in < 5 and bot.proc.returncode == 0, log
    # every update the bot fetched (acknowledged) before stopping was answered
    answered = {int(c.params["chat_id"]) for c in fake.sent()}
    remaining = {u["message"]["chat"]["id"] for u in fake._updates}
    assert answered | remaining == set(range(300, 340))
    assert len(fake.sent()) == len(answered)
