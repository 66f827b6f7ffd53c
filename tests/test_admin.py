"""The curation loop through the bot: live reload, admin rights, reports and feedback."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.admin import REFUSAL
from bot.app import build_application, load_services, post_init, services
from bot.config import Settings
from bot.handlers import THANKS
from tests import fake_bot_api as tg
from tests.conftest import KNOWLEDGE_DIR

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
ADMIN = 1111
USER = 2222
GROUP = -100777

NEW_TOPIC = """\
topic:
  id: series
  command: series
  title: The series
  summary: What the next articles of the series will cover.
entries:
  - id: series-next
    questions:
      - which companies will the next articles cover
      - next articles in the series
    answer: >
      The next updates will cover Bytedance (TikTok), JD.com (Ochama),
      Pinduoduo (Temu) and Shein.
    citations:
      - source: chinatalk-alibaba
        quote: >
          In the next updates we will discuss the cross-border activities of
          Bytedance (TikTok), JD.com (Ochama), Pinduoduo (Temu) and Shein.
"""


def copy_knowledge(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    target.mkdir()
    for path in KNOWLEDGE_DIR.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture
async def admin_bot(tmp_path: Path, sources_dir: Path) -> AsyncIterator:
    fake = tg.FakeBotAPI(TOKEN)
    settings = Settings(bot_token=TOKEN, admin_ids=frozenset({ADMIN}),
                        knowledge_dir=copy_knowledge(tmp_path), sources_dir=sources_dir,
                        data_dir=tmp_path / "data")
    app = build_application(settings, load_services(settings), request=tg.FakeRequest(fake))
    async with app:
        await post_init(app)
        yield fake, app, settings


def replies(fake: tg.FakeBotAPI, chat_id: int) -> list[str]:
    return [c.params["text"] for c in fake.sent() if c.params["chat_id"] == chat_id]


async def reload(app, user_id: int = ADMIN) -> None:
    await tg.feed(app, tg.message("/reload", chat_id=user_id, user_id=user_id))


async def test_admin_menu_is_scoped_to_admins(admin_bot):
    fake, _, _ = admin_bot
    menus = fake.sent("setMyCommands")
    public = [c for c in menus if c.params.get("scope", {}).get("type") in (None, "default")]
    private = [c for c in menus if c.params.get("scope", {}).get("type") == "chat"]
    assert public and "reload" not in {c["command"] for c in public[-1].params["commands"]}
    assert private[-1].params["scope"]["chat_id"] == ADMIN
    assert {"reload", "stats", "unanswered"} <= {c["command"]
                                                 for c in private[-1].params["commands"]}


async def test_reload_reports_what_changed(admin_bot):
    fake, app, settings = admin_bot
    miravia = settings.knowledge_dir / "miravia.yaml"
    miravia.write_text(miravia.read_text().replace("Miravia", "Miravia", 1).replace(
        "flash sales", "flash sales (short offers)", 1))
    (settings.knowledge_dir / "series.yaml").write_text(NEW_TOPIC)
    await reload(app)
    (reply,) = replies(fake, ADMIN)
    assert reply.startswith("<b>Reloaded</b>")
    assert "Added (1): series-next" in reply
    assert "Topics changed" in reply
    await tg.feed(app, tg.message("which companies will the next articles cover",
                                  chat_id=USER, user_id=USER))
    assert "Ochama" in replies(fake, USER)[0]


BROKEN_EDITS = {
    "yaml syntax": ("lazada.yaml", lambda t: t + "\n  - id: [unclosed\n", "lazada.yaml:"),
    "unknown key": ("lazada.yaml", lambda t: t.replace("    answer:", "    awnser:", 1),
                    "unknown key 'awnser'"),
    "bad quote": ("lazada.yaml", lambda t: t.replace("James Dong, a former", "Jim Dong, a former",
                                                     1), "quote not found"),
    "unknown reference": ("lazada.yaml", lambda t: t.replace("related: [", "related: [nope, ", 1),
                          "unknown entry 'nope'"),
    "not utf-8": ("zz.yaml", None, "not UTF-8"),
}


@pytest.mark.parametrize("kind", list(BROKEN_EDITS))
async def test_broken_reload_keeps_the_old_base(admin_bot, kind):
    fake, app, settings = admin_bot
    name, edit, expected = BROKEN_EDITS[kind]
    path = settings.knowledge_dir / name
    if edit is None:
        path.write_bytes(b"entries:\n  - id: caf\xe9\n")
    else:
        path.write_text(edit(path.read_text()))
    before = services(app).matcher
    await reload(app)
    (reply,) = replies(fake, ADMIN)
    assert reply.startswith("<b>Reload refused</b>") and expected in reply
    assert services(app).matcher is before
    await tg.feed(app, tg.message("lazda ceo", chat_id=USER, user_id=USER))
    assert "James Dong" in replies(fake, USER)[0]


async def test_non_admin_is_refused_and_logged(admin_bot, caplog):
    fake, app, settings = admin_bot
    (settings.knowledge_dir / "series.yaml").write_text(NEW_TOPIC)
    before = services(app).matcher
    for command in ("/reload", "/stats", "/unanswered"):
        await tg.feed(app, tg.message(command, chat_id=USER, user_id=USER))
    assert replies(fake, USER) == [REFUSAL] * 3
    assert services(app).matcher is before
    assert f"user id {USER}" in caplog.text


async def test_topic_command_added_and_removed_by_reload(admin_bot):
    fake, app, settings = admin_bot
    await tg.feed(app, tg.message("/series", chat_id=USER, user_id=USER))
    assert "don't know the command" in replies(fake, USER)[-1]
    (settings.knowledge_dir / "series.yaml").write_text(NEW_TOPIC)
    await reload(app)
    await tg.feed(app, tg.message("/series", chat_id=USER, user_id=USER))
    assert replies(fake, USER)[-1].startswith("<b>The series</b>")
    menu = fake.sent("setMyCommands")[-1].params["commands"]
    assert "series" in {c["command"] for c in menu}
    (settings.knowledge_dir / "series.yaml").unlink()
    await reload(app)
    await tg.feed(app, tg.message("/series", chat_id=USER, user_id=USER))
    assert "don't know the command" in replies(fake, USER)[-1]


async def test_questions_during_reloads_are_all_answered(admin_bot):
    fake, app, settings = admin_bot
    (settings.knowledge_dir / "series.yaml").write_text(NEW_TOPIC)
    services(app).limiter.limit = 10_000
    questions = [tg.feed(app, tg.message(q, chat_id=USER, user_id=USER, message_id=i))
                 for i, q in enumerate(["lazda ceo", "miravia coupon", "trendyol germany target",
                                        "weather in madrid"] * 15)]
    reloads = [reload(app) for _ in range(3)]
    await asyncio.gather(*questions, *reloads)
    answers = replies(fake, USER)
    assert len(answers) == 60
    assert not any("something went wrong" in a for a in answers)
    assert sum("James Dong" in a for a in answers) == 15
    assert all(r.startswith("<b>Reloaded</b>") for r in replies(fake, ADMIN))


async def test_feedback_is_stored_and_acknowledged(admin_bot):
    fake, app, _ = admin_bot
    await tg.feed(app, tg.message("lazda ceo", chat_id=USER, user_id=USER))
    markup = fake.sent()[-1].params["reply_markup"]["inline_keyboard"]
    up, down = markup[-1]
    assert up["text"] == "👍" and down["text"] == "👎"
    await tg.feed(app, tg.callback(up["callback_data"], chat_id=USER, user_id=USER))
    await tg.feed(app, tg.callback(down["callback_data"], chat_id=USER, user_id=USER))
    assert [c.params["text"] for c in fake.sent("answerCallbackQuery")] == [THANKS, THANKS]
    assert len(fake.sent()) == 1  # acknowledged without a new message
    assert services(app).store.votes() == [("lazada-ceo", -1)]


async def test_stats_and_unanswered_for_admins(admin_bot):
    fake, app, _ = admin_bot
    for q in ("lazda ceo", "who founded trendyol", "who founded Trendyol?", "weather in madrid"):
        await tg.feed(app, tg.message(q, chat_id=USER, user_id=USER))
    await tg.feed(app, tg.message("/stats", chat_id=ADMIN, user_id=ADMIN))
    await tg.feed(app, tg.message("/unanswered", chat_id=ADMIN, user_id=ADMIN))
    stats, unanswered = replies(fake, ADMIN)
    assert "Questions: 4 today" in stats and "lazada-ceo" in stats
    assert "2× who founded" in unanswered.lower()


async def test_failing_query_log_never_stops_an_answer(admin_bot, tmp_path):
    fake, app, _ = admin_bot
    blocker = tmp_path / "blocked"
    blocker.write_text("not a directory")
    services(app).store.close()
    services(app).store.data_dir = blocker
    services(app).store.path = blocker / "queries.sqlite3"
    await tg.feed(app, tg.message("lazda ceo", chat_id=USER, user_id=USER))
    (call,) = fake.sent()
    assert "James Dong" in call.params["text"]
    assert all(not row or row[0]["text"] != "👍"
               for row in call.params.get("reply_markup", {}).get("inline_keyboard", []))
    assert services(app).store.errors >= 1


async def test_curator_flow_from_unanswered_to_answered(admin_bot):
    """The README's loop: /unanswered shows the gap, an entry is added, /reload, answered."""
    fake, app, settings = admin_bot
    alibaba = settings.knowledge_dir / "alibaba.yaml"
    # start from a base without the image credit, as the bundled one was before it was added
    text = alibaba.read_text()
    start = text.index("  - id: alibaba-header-image")
    alibaba.write_text(text[:start] + text[text.index("  - id: ", start + 1):])
    await reload(app)
    question = "who drew the header illustration"
    await tg.feed(app, tg.message(question, chat_id=USER, user_id=USER))
    assert "not sure" in replies(fake, USER)[-1]
    await tg.feed(app, tg.message("/unanswered", chat_id=ADMIN, user_id=ADMIN))
    assert f"1× {question}" in replies(fake, ADMIN)[-1]
    alibaba.write_text(alibaba.read_text() + IMAGE_ENTRY)
    await reload(app)
    assert "Added (1): alibaba-header-image" in replies(fake, ADMIN)[-1]
    await tg.feed(app, tg.message(question, chat_id=USER, user_id=USER))
    assert "Clker-Free-Vector-Images" in replies(fake, USER)[-1]


IMAGE_ENTRY = """
  - id: alibaba-header-image
    questions:
      - who drew the header illustration
      - who made the header image of the article
      - header image credit
    answer: The article's header image is by Clker-Free-Vector-Images.
    citations:
      - source: chinatalk-alibaba
        quote: "Original image by Clker-Free-Vector-Images"
"""


async def test_daily_prune_job(admin_bot):
    from bot.app import prune_job

    _fake, app, _ = admin_bot
    assert [j.name for j in app.job_queue.jobs()] == ["prune-query-log"]
    store = services(app).store
    await tg.feed(app, tg.message("lazda ceo", chat_id=USER, user_id=USER))
    store.clock = lambda: 10**10  # far in the future: everything is older than 90 days
    context = type("Context", (), {"bot_data": app.bot_data})()
    await prune_job(context)
    assert store.rows() == []


async def test_a_known_gap_is_explained_and_shown_as_one_in_unanswered(admin_bot):
    fake, app, _ = admin_bot
    question = "who was lazada's ceo before james dong"
    await tg.feed(app, tg.message(question, chat_id=USER, user_id=USER))
    (reply,) = [c for c in fake.sent() if c.params["chat_id"] == USER]
    assert reply.params["text"].startswith("The article doesn't")
    assert "<blockquote>" in reply.params["text"]
    buttons = [b["callback_data"] for row in reply.params["reply_markup"]["inline_keyboard"]
               for b in row]
    assert buttons and not any(b.startswith("v:") for b in buttons)  # no votes on a non-answer
    await tg.feed(app, tg.message("/unanswered", chat_id=ADMIN, user_id=ADMIN))
    assert f"1× {question}  [known gap: gap-lazada-previous-ceos]" in replies(fake, ADMIN)[-1]
