"""End to end over real HTTP: `python -m bot run` polling a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests import fake_bot_api as tg
from tests.bot_process import BotProcess

TOKEN = "987654321:AAFakeTokenForEndToEndTests_0123456789"
GROUP = -100555


@pytest.fixture
def running_bot(tmp_path, sources_dir) -> Iterator[tuple[tg.FakeBotAPI, BotProcess]]:
    fake = tg.FakeBotAPI(TOKEN).serve()
    bot = BotProcess(tmp_path, sources_dir, fake, TOKEN)
    try:
        ready = fake.wait_for(lambda calls: any(c.method == "setMyCommands" for c in calls),
                              timeout=30)
        assert ready, bot.log_path.read_text()
        yield fake, bot
    finally:
        bot.stop()
        fake.close()


def _sent_to(fake: tg.FakeBotAPI, chat_id: int) -> list[tg.Call]:
    return [c for c in fake.sent() if c.params.get("chat_id") == chat_id]


def test_conversation_over_http(running_bot):
    fake, _bot = running_bot
    fake.add_update(tg.message("whats miravia", chat_id=1001, user_id=1001))
    fake.add_update(tg.message("lazada ceo", chat_id=GROUP, kind="supergroup", user_id=1002,
                               message_id=2))
    fake.add_update(tg.message("/ask@CrossBorderTestBot who runs lazada", chat_id=GROUP,
                               kind="supergroup", user_id=1002, message_id=3))
    fake.add_update(tg.message("@CrossBorderTestBot trendyol germany target", chat_id=GROUP,
                               kind="supergroup", user_id=1003, message_id=4,
                               mention="@CrossBorderTestBot"))
    fake.add_update(tg.message("and the coupon?", chat_id=GROUP, kind="supergroup",
                               user_id=1003, message_id=5,
                               reply_to=tg.bot_message(fake, GROUP, "supergroup")))
    fake.add_update(tg.message("/cainiao", chat_id=1001, user_id=1001, message_id=6))
    fake.add_update(tg.message("/cainiao brazil lockers", chat_id=1001, user_id=1001,
                               message_id=7))
    fake.add_update(tg.callback("a:lazada-ceo", chat_id=1001, user_id=1001, fake=fake))
    fake.add_update(tg.inline("miravia coupon", user_id=1001))

    assert fake.wait_for(lambda calls: sum(c.method == "sendMessage" for c in calls) >= 7
                         and any(c.method == "answerInlineQuery" for c in calls), timeout=30)
    time.sleep(0.5)  # anything sent late (a reply to chatter) would show up now

    # updates are handled concurrently, so replies may come in any order: sort them by the
    # message they answer (private ones by what they contain)
    group = sorted((c.params for c in _sent_to(fake, GROUP)),
                   key=lambda p: p["reply_parameters"]["message_id"])
    private = [c.params for c in _sent_to(fake, 1001)]
    def private_reply(needle: str, card: bool = False) -> dict:
        (found,) = [p for p in private
                    if needle in p["text"] and p["text"].startswith("<b>") == card]
        return found

    assert len(private) == 4
    first = private_reply("Miravia is")
    assert first["parse_mode"] == "HTML" and "<blockquote>" in first["text"]
    # the group's plain chatter (message 2) got nothing; the three addressed ones got replies
    assert [p["reply_parameters"]["message_id"] for p in group] == [3, 4, 5]
    assert "James Dong" in group[0]["text"]
    assert "€3 billion" in group[1]["text"]
    assert private_reply("<b>Cainiao", card=True)["reply_markup"]["inline_keyboard"]
    assert private_reply("1.000")
    assert private_reply("James Dong")
    (callback_answer,) = fake.sent("answerCallbackQuery")
    assert callback_answer.params["callback_query_id"]
    (inline_answer,) = fake.sent("answerInlineQuery")
    assert "€20" in inline_answer.params["results"][0]["input_message_content"]["message_text"]


def test_token_never_reaches_the_log(running_bot):
    """At DEBUG, httpx and python-telegram-bot log URLs that contain the token: redacted."""
    fake, bot = running_bot
    fake.add_update(tg.message("lazada ceo", chat_id=1001, user_id=1001))
    fake.add_update(tg.message("/nonsense", chat_id=1001, user_id=1001, message_id=2))
    assert fake.wait_for(lambda calls: sum(c.method == "sendMessage" for c in calls) >= 2)
    log = bot.stop()
    assert "getUpdates" in log  # DEBUG lines about API calls were written...
    assert "[REDACTED]" in log  # ...with the token taken out
    assert TOKEN not in log
    assert TOKEN.split(":")[1] not in log


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload: dict, secret: str | None) -> int:
    import json
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(url, json.dumps(payload).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError):
        return 0  # not listening yet


def test_webhook_mode_requires_the_secret_token(tmp_path, sources_dir):
    fake = tg.FakeBotAPI(TOKEN).serve()
    port, secret = _free_port(), "s3cret_token-for-tests"
    bot = BotProcess(tmp_path, sources_dir, fake, TOKEN, "--webhook", extra_env={
        "WEBHOOK_URL": "https://bot.example.org/telegram/hook", "WEBHOOK_SECRET": secret,
        "WEBHOOK_LISTEN": "127.0.0.1", "WEBHOOK_PORT": str(port)})
    try:
        assert fake.wait_for(lambda calls: any(c.method == "setWebhook" for c in calls),
                             timeout=30), bot.log_path.read_text()
        (set_webhook,) = fake.sent("setWebhook")
        assert set_webhook.params["url"] == "https://bot.example.org/telegram/hook"
        assert set_webhook.params["secret_token"] == secret
        url = f"http://127.0.0.1:{port}/telegram/hook"
        deadline = time.monotonic() + 10
        update = {"update_id": 1, **tg.message("lazda ceo", chat_id=1001, user_id=1001)}
        while (status := _post(url, update, None)) not in (403,) and time.monotonic() < deadline:
            time.sleep(0.2)  # the server may still be starting
        assert status == 403
        assert _post(url, update, "wrong") == 403
        assert fake.sent() == []
        assert _post(url, {**update, "update_id": 2}, secret) == 200
        assert fake.wait_for(lambda calls: any(c.method == "sendMessage" for c in calls))
        assert "James Dong" in fake.sent()[0].params["text"]
    finally:
        log = bot.stop()
        fake.close()
    assert secret not in log and TOKEN not in log
