"""Any text a chat can send, through every path: never an exception, always valid messages."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import Services, build_application, post_init
from bot.config import Settings
from bot.handlers import ERROR_REPLY
from bot.matching import Matcher
from bot.throttle import RateLimiter
from tests import fake_bot_api as tg
from tests.conftest import KNOWLEDGE_DIR
from tests.telegram_html import problems

TOKEN = "111222333:AAHostileInputTestToken_abcdefghijklm"
# A new group for each example: the AIORateLimiter rightly allows a group only 20 messages a
# minute, which would make this test wait rather than test.
GROUPS = itertools.count(-1001000000000, -1)

# Unicode of every category, with the characters that break naive code over-represented.
NASTY = st.sampled_from(["<b>", "</b>", "&", "&amp;", "<", ">", "\"", "'", "*", "_", "`",
                         "[x](http://e.org)", "/", "@", "\u200b", "\u200f", "\u202e", "\x00",
                         "\n", "\t", "🤔", "👍🏽", "ﷺ", "مرحبا", "漢字", "\ufeff", "\U0001f9d1"])
TEXT = st.lists(st.one_of(st.text(max_size=40), NASTY), max_size=60).map("".join)
PREFIXES = ["", "/ask ", "/miravia ", "/lazada@CrossBorderTestBot ", "/start ", "/help ",
            "/sources ", "/reload ", "/stats ", "/unanswered ", "/", "/nosuch ",
            "@CrossBorderTestBot "]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def bot(loop, kb, tmp_path_factory):
    fake = tg.FakeBotAPI(TOKEN)
    settings_ = Settings(bot_token=TOKEN, knowledge_dir=KNOWLEDGE_DIR,
                         data_dir=tmp_path_factory.mktemp("data"))
    svc = Services(settings_, Matcher(kb), RateLimiter(limit=10**9))
    app = build_application(settings_, svc, request=tg.FakeRequest(fake))
    loop.run_until_complete(app.initialize())
    loop.run_until_complete(post_init(app))
    yield fake, app
    loop.run_until_complete(app.shutdown())


def check_everything_sent(fake: tg.FakeBotAPI) -> None:
    for call in fake.calls:
        if call.method == "sendMessage":
            text = call.params["text"]
            assert text != ERROR_REPLY, "a handler raised"
            assert not problems(text), (problems(text), text[:300])
        if call.method == "answerInlineQuery":
            for result in call.params["results"]:
                body = result["input_message_content"]["message_text"]
                assert not problems(body), problems(body)
        markup = call.params.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                assert len(button["callback_data"].encode()) <= 64
    fake.calls.clear()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), text=TEXT, chat=st.sampled_from(["private", "group"]))
def test_any_text_through_any_command(bot, loop, prefix, text, chat):
    fake, app = bot
    message = (prefix + text)[:4096] or "x"
    payload = (tg.message(message, chat_id=4242) if chat == "private" else
               tg.message(message, chat_id=next(GROUPS), kind="supergroup",
                          mention="@CrossBorderTestBot"))
    loop.run_until_complete(tg.feed(app, payload))
    check_everything_sent(fake)


@pytest.mark.parametrize("text", [
    "x" * 10_000, "/ask " + "lazada " * 700, "/miravia " + "€" * 4000, "<b>" * 3000,
    "&" * 9000, "/", "/ask", "@", "\u202e" * 500 + "lazada ceo",
])
def test_extreme_messages(bot, loop, text):
    fake, app = bot
    loop.run_until_complete(tg.feed(app, tg.message(text[:4096])))
    check_everything_sent(fake)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.text(max_size=64), st.sampled_from([
    "a:", "a:lazada-ceo:extra", "t:", "t:nosuch", "v:", "v:abc:1", "v:99999999:1", "v:1:2",
    "v:-1:1", "a:../../etc/passwd", "a:" + "x" * 62])))
def test_tampered_callback_data_gets_a_polite_answer(bot, loop, data):
    fake, app = bot
    loop.run_until_complete(tg.feed(app, tg.callback(data, fake=fake)))
    answers = [c for c in fake.calls if c.method == "answerCallbackQuery"]
    assert len(answers) == 1
    assert answers[0].params.get("text") != ERROR_REPLY
    check_everything_sent(fake)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=TEXT)
def test_any_inline_query(bot, loop, query):
    fake, app = bot
    loop.run_until_complete(tg.feed(app, tg.inline(query[:256])))
    assert [c.method for c in fake.calls] == ["answerInlineQuery"]
    check_everything_sent(fake)


def test_validator_catches_what_telegram_rejects():
    assert not problems("<b>bold</b> &amp; <a href=\"https://x.org\">link</a>")
    for bad in ["<b>unclosed", "<i><b>x</i></b>", "a < b", "AT&T", "<script>x</script>",
                "<a>no href</a>", "x" * 4097]:
        assert problems(bad), bad
