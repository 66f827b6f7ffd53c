"""Reload without a restart, in a running bot process: on SIGHUP, and with `run --watch`."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests import fake_bot_api as tg
from tests.bot_process import BotProcess
from tests.test_admin import NEW_TOPIC, copy_knowledge

TOKEN = "555444333:AALiveReloadTestToken_abcdefghijklmno"


def menu_has(command: str):
    def check(calls: list[tg.Call]) -> bool:
        menus = [c for c in calls if c.method == "setMyCommands"]
        return bool(menus) and command in {c["command"] for c in menus[-1].params["commands"]}
    return check


@pytest.fixture
def live(tmp_path, sources_dir, request) -> Iterator[tuple[tg.FakeBotAPI, BotProcess, object]]:
    knowledge = copy_knowledge(tmp_path)
    fake = tg.FakeBotAPI(TOKEN).serve()
    bot = BotProcess(tmp_path, sources_dir, fake, TOKEN, *request.param,
                     knowledge_dir=knowledge)
    try:
        assert fake.wait_for(menu_has("miravia"), timeout=30), bot.log_path.read_text()
        yield fake, bot, knowledge
    finally:
        bot.stop()
        fake.close()


def ask_series(fake: tg.FakeBotAPI) -> str:
    before = len(fake.sent())
    fake.add_update(tg.message("/series", chat_id=3003, user_id=3003))
    assert fake.wait_for(lambda calls: sum(c.method == "sendMessage" for c in calls) > before)
    return fake.sent()[-1].params["text"]


@pytest.mark.parametrize("live", [()], indirect=True)
def test_sighup_reloads_the_knowledge_base(live):
    fake, bot, knowledge = live
    assert "don't know the command" in ask_series(fake)
    (knowledge / "series.yaml").write_text(NEW_TOPIC)
    bot.signal(signal.SIGHUP)
    assert fake.wait_for(menu_has("series"), timeout=15), bot.log_path.read_text()
    assert ask_series(fake).startswith("<b>The series</b>")
    # a broken file and another SIGHUP: refused, the bot goes on with what it had
    (knowledge / "broken.yaml").write_text("entries: [unclosed\n")
    bot.signal(signal.SIGHUP)
    time.sleep(1.5)
    assert ask_series(fake).startswith("<b>The series</b>")
    log = bot.stop()
    assert "reload refused" in log and "broken.yaml" in log


@pytest.mark.parametrize("live", [("--watch",)], indirect=True)
def test_watch_mode_reloads_after_a_file_changes(live):
    fake, bot, knowledge = live
    started = time.monotonic()
    (knowledge / "series.yaml").write_text(NEW_TOPIC)
    assert fake.wait_for(menu_has("series"), timeout=15), bot.log_path.read_text()
    assert time.monotonic() - started >= 0.9  # debounced: waits for the file to settle
    assert ask_series(fake).startswith("<b>The series</b>")
    (knowledge / "series.yaml").unlink()
    assert fake.wait_for(lambda calls: not menu_has("series")(calls), timeout=15)
    log = bot.stop()
    assert log.count("a file in KNOWLEDGE_DIR changed") == 2  # one reload per change
