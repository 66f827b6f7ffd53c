"""Handlers with real python-telegram-bot objects and an in-process fake Bot API: no network."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bot.app import Services, build_application, post_init, services
from bot.config import Settings
from bot.handlers import STALE_BUTTON
from bot.matching import Matcher
from bot.throttle import RateLimiter
from tests import fake_bot_api as tg
from tests.conftest import KNOWLEDGE_DIR

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
GROUP = -100123


@pytest.fixture
async def bot(kb) -> AsyncIterator[tuple[tg.FakeBotAPI, object]]:
    fake = tg.FakeBotAPI(TOKEN)
    settings = Settings(bot_token=TOKEN, knowledge_dir=KNOWLEDGE_DIR)
    svc = Services(settings, Matcher(kb), RateLimiter(limit=5))
    app = build_application(settings, svc, request=tg.FakeRequest(fake))
    async with app:
        await post_init(app)
        fake.calls.clear()
        yield fake, app


feed, texts = tg.feed, tg.texts


async def test_private_question_gets_a_cited_html_answer(bot):
    fake, app = bot
    await feed(app, tg.message("lazda ceo"))
    (call,) = fake.sent()
    assert call.params["chat_id"] == 4242
    assert call.params.get("parse_mode") == "HTML"
    assert "James Dong" in call.params["text"]
    assert "<blockquote>" in call.params["text"]
    assert 'href="https://www.chinatalk.nl/cross-border-update-alibaba/"' in call.params["text"]


async def test_unsure_answer_offers_did_you_mean_buttons(bot):
    fake, app = bot
    await feed(app, tg.message("weather in <b>madrid</b> & co"))
    (call,) = fake.sent()
    text = call.params["text"]
    assert "&lt;b&gt;madrid&lt;/b&gt; &amp; co" in text  # the user's text is escaped
    rows = call.params["reply_markup"]["inline_keyboard"]
    assert 1 <= len(rows) <= 3
    for row in rows:
        assert len(row[0]["callback_data"].encode()) <= 64


async def test_group_chatter_is_ignored(bot):
    fake, app = bot
    await feed(app, tg.message("lazada ceo", chat_id=GROUP, kind="supergroup"))
    assert fake.sent() == []


@pytest.mark.parametrize("payload", [
    tg.message("/ask@CrossBorderTestBot lazada ceo", chat_id=GROUP, kind="supergroup"),
    tg.message("/ask lazada ceo", chat_id=GROUP, kind="supergroup"),
    tg.message("@CrossBorderTestBot lazada ceo", chat_id=GROUP, kind="supergroup",
               mention="@CrossBorderTestBot"),
    tg.message("and the lazada ceo?", chat_id=GROUP, kind="supergroup",
               reply_to={"message_id": 5, "date": 1, "chat": tg.chat(GROUP, "supergroup"),
                         "from": {"id": tg.BOT_ID, "is_bot": True, "first_name": "B"},
                         "text": "earlier"}),
])
async def test_group_answers_when_addressed_and_quotes_the_question(bot, payload):
    fake, app = bot
    await feed(app, payload)
    (call,) = fake.sent()
    assert "James Dong" in call.params["text"]
    assert call.params["reply_parameters"]["message_id"] == 1


async def test_command_for_another_bot_is_ignored(bot):
    fake, app = bot
    await feed(app, tg.message("/miravia@SomeOtherBot", chat_id=GROUP, kind="supergroup"))
    await feed(app, tg.message("/ask@SomeOtherBot lazada ceo", chat_id=GROUP, kind="supergroup"))
    assert fake.sent() == []


async def test_reply_stays_in_the_forum_topic(bot):
    fake, app = bot
    await feed(app, tg.message("/ask lazada ceo", chat_id=GROUP, kind="supergroup",
                               thread_id=77))
    (call,) = fake.sent()
    assert call.params["message_thread_id"] == 77


async def test_topic_command_without_and_with_arguments(bot):
    fake, app = bot
    await feed(app, tg.message("/miravia"))
    await feed(app, tg.message("/miravia coupon"))
    card, answer = texts(fake)
    assert card.startswith("<b>Miravia</b>")
    assert "€20" in answer


async def test_start_with_deep_link_opens_a_topic(bot):
    fake, app = bot
    await feed(app, tg.message("/start trendyol"))
    await feed(app, tg.message("/start"))
    card, welcome = texts(fake)
    assert card.startswith("<b>Trendyol</b>")
    assert "How to ask" in welcome and "/miravia" in welcome


async def test_help_and_sources(bot):
    fake, app = bot
    await feed(app, tg.message("/help"))
    await feed(app, tg.message("/sources"))
    help_text, sources = texts(fake)
    assert "Cross-border update: Alibaba" in help_text
    assert "chinatalk.nl" in sources


async def test_unknown_command_in_private_gets_a_hint(bot):
    fake, app = bot
    await feed(app, tg.message("/nonsense"))
    assert "Try /help" in texts(fake)[0]


async def test_button_answers_and_stale_button_is_polite(bot):
    fake, app = bot
    await feed(app, tg.callback("a:lazada-ceo"))
    await feed(app, tg.callback("a:no-such-entry"))
    await feed(app, tg.callback("garbage"))
    answers = fake.sent("answerCallbackQuery")
    assert len(answers) == 3
    assert answers[1].params["text"] == STALE_BUTTON == answers[2].params["text"]
    assert "James Dong" in texts(fake)[0]


async def test_inline_query_lists_answers_and_topics(bot):
    fake, app = bot
    await feed(app, tg.inline("lazada ceo"))
    await feed(app, tg.inline(""))
    with_query, empty = fake.sent("answerInlineQuery")
    results = with_query.params["results"]
    assert results and "James Dong" in results[0]["input_message_content"]["message_text"]
    assert {r["id"] for r in empty.params["results"]} >= {"t:miravia", "t:lazada"}


async def test_rate_limit_sends_one_notice(bot):
    fake, app = bot
    for _ in range(8):
        await feed(app, tg.message("lazada ceo"))
    sent = texts(fake)
    assert len(sent) == 6  # 5 answers, then one notice, then silence
    assert "faster than I can keep up" in sent[-1]


async def test_post_init_sets_the_command_menu(bot):
    fake, app = bot
    await post_init(app)
    (call,) = fake.sent("setMyCommands")
    commands = {c["command"] for c in call.params["commands"]}
    assert {"ask", "help", "miravia", "lazada", "trendyol", "sources"} <= commands
    assert services(app).bot_username == tg.BOT_USERNAME


async def test_failing_command_menu_is_not_fatal(bot, caplog):
    fake, app = bot
    fake.faults["setMyCommands"] = [lambda p: (400, {"ok": False, "error_code": 400,
                                                     "description": "Bad Request: nope"})]
    await post_init(app)
    assert "could not set the command menu" in caplog.text


async def test_handler_error_is_logged_and_user_gets_a_short_reply(bot, caplog, monkeypatch):
    fake, app = bot

    def boom(*args, **kwargs):
        raise RuntimeError("internal detail /secret/path")

    monkeypatch.setattr(services(app).matcher, "match", boom)
    await feed(app, tg.message("lazada ceo"))
    (call,) = fake.sent()
    assert "something went wrong" in call.params["text"]
    assert "secret" not in call.params["text"]
    assert "internal detail" in caplog.text


async def test_every_message_is_valid_telegram_html(bot):
    fake, app = bot
    for text in ("lazda ceo", "<i>x</i> & y", "/miravia", "/help", "/sources", "hi"):
        await feed(app, tg.message(text))
    for text in texts(fake):
        assert len(text) <= 4096
        tags = re.findall(r"</?([a-z-]+)", text)
        assert set(tags) <= {"b", "i", "a", "blockquote"}
