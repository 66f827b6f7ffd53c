"""What the bot promises about secrets and rights: the token stays out of logs, replies and the
query log; user text never reaches a file path or a shell."""

from __future__ import annotations

import ast
import io
import logging

import pytest

from bot.app import RedactingFilter, build_application, load_services, post_init, services
from bot.config import Settings
from tests import fake_bot_api as tg
from tests.conftest import ROOT
from tests.test_admin import copy_knowledge

TOKEN = "666777888:AASecurityTestToken_abcdefghijklmnopq"


def test_redacting_filter_covers_messages_arguments_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter([TOKEN]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.info("POST https://api.telegram.org/bot%s/getMe", TOKEN)
        logger.debug(f"url encoded: {TOKEN.replace(':', '%3A')}")
        try:
            raise RuntimeError(f"failed calling /bot{TOKEN}/sendMessage")
        except RuntimeError:
            logger.exception("boom")
        logger.info("%s %s", "broken format")  # a bad format string still gets through
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert text.count("[REDACTED]") >= 3
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "%s %s" in text


@pytest.fixture
async def bot(tmp_path, sources_dir):
    fake = tg.FakeBotAPI(TOKEN)
    settings = Settings(bot_token=TOKEN, knowledge_dir=copy_knowledge(tmp_path),
                        sources_dir=sources_dir, data_dir=tmp_path / "data")
    app = build_application(settings, load_services(settings), request=tg.FakeRequest(fake))
    async with app:
        await post_init(app)
        yield fake, app, settings


async def test_token_in_an_exception_reaches_no_user_and_no_query_log(bot, monkeypatch):
    fake, app, settings = bot
    await tg.feed(app, tg.message("lazda ceo"))  # the query log exists

    def leak(*args, **kwargs):
        raise RuntimeError(f"could not reach https://api.telegram.org/bot{TOKEN}/sendMessage")

    monkeypatch.setattr(services(app).matcher, "match", leak)
    await tg.feed(app, tg.message("miravia coupon"))
    for call in fake.calls:
        assert TOKEN not in str(call.params)
    services(app).store.close()
    raw = b"".join(p.read_bytes() for p in settings.data_dir.iterdir())
    assert TOKEN.encode() not in raw and TOKEN.split(":")[1].encode() not in raw


async def test_admin_rights_follow_the_numeric_id_not_the_username(bot):
    fake, app, settings = bot
    assert not settings.admin_ids
    # a user whose name says "admin" is still refused: only numeric ids in ADMIN_IDS count
    await tg.feed(app, {"message": {**tg.message("/reload")["message"],
                                    "from": {"id": 4242, "is_bot": False, "first_name": "admin",
                                             "username": "admin"}}})
    assert "only for the bot's admins" in fake.sent()[-1].params["text"]


FORBIDDEN_CALLS = {"open", "eval", "exec", "system", "popen", "Popen",
                   "check_output", "unlink", "rmtree", "read_text", "write_text"}


@pytest.mark.parametrize("module", ["handlers.py", "admin.py", "formatting.py", "matching.py"])
def test_chat_facing_code_touches_no_files_or_shell(module):
    """User text flows through these modules; none of them opens files or runs commands
    (files are only read from configured paths in knowledge.py and store.py)."""
    tree = ast.parse((ROOT / "bot" / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = {a.name for a in node.names} | {getattr(node, "module", None)}
            assert not names & {"subprocess", "os", "shutil", "pathlib"}, (module, names)
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            assert name not in FORBIDDEN_CALLS, (module, name, node.lineno)
