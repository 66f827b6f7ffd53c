"""Settings: read from the environment and .env, validated, and never echo a token."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEFAULT_BASE_URL, DEFAULT_KNOWLEDGE_DIR, ConfigError, Settings, mask_token
from bot.matching import MatchConfig

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"


def test_defaults_without_environment(tmp_path: Path):
    settings = Settings.from_env({}, dotenv_path=tmp_path / "none")
    assert settings.knowledge_dir == DEFAULT_KNOWLEDGE_DIR
    assert settings.telegram_base_url == DEFAULT_BASE_URL
    assert settings.sources_dir is None and settings.admin_ids == frozenset()


def test_environment_overrides_dotenv(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("ADMIN_IDS=1, 2\nLOG_LEVEL=debug\nKNOWLEDGE_DIR=/from/dotenv\n")
    settings = Settings.from_env({"KNOWLEDGE_DIR": "/from/env"}, dotenv_path=dotenv)
    assert settings.admin_ids == frozenset({1, 2})
    assert settings.log_level == "DEBUG"
    assert settings.knowledge_dir == Path("/from/env")


@pytest.mark.parametrize(("env", "fragment"), [
    ({"ADMIN_IDS": "1,@someone"}, "numeric"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ({"QUERY_LOG_DAYS": "0"}, "at least 1"),
    ({"WEBHOOK_PORT": "http"}, "whole number"),
    ({"ANSWER_THRESHOLD": "high"}, "between 0 and 1"),
    ({"ANSWER_THRESHOLD": "1"}, "between 0 and 1"),
    ({"ANSWER_THRESHOLD": "0"}, "between 0 and 1"),
])
def test_bad_settings_are_clear_errors(tmp_path: Path, env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env(env, dotenv_path=tmp_path / "none")


def test_answer_threshold_overrides_the_tuned_default(tmp_path: Path):
    default = Settings.from_env({}, dotenv_path=tmp_path / "none").match_config()
    assert default == MatchConfig()
    strict = Settings.from_env({"ANSWER_THRESHOLD": "0.99"}, dotenv_path=tmp_path / "none")
    assert strict.match_config().confidence_threshold == 0.99
    assert strict.match_config().rank_weights == default.rank_weights


@pytest.mark.parametrize("token", ["", "not-a-token", "123:short", TOKEN[:-10]])
def test_bad_token_is_refused_without_echoing_it(tmp_path: Path, token: str):
    settings = Settings.from_env({"BOT_TOKEN": token}, dotenv_path=tmp_path / "none")
    with pytest.raises(ConfigError) as info:
        settings.require_token()
    if len(token) > 8:
        assert token not in str(info.value)
        assert token.split(":")[-1] not in str(info.value)


def test_good_token_is_accepted_and_masked(tmp_path: Path):
    settings = Settings.from_env({"BOT_TOKEN": TOKEN}, dotenv_path=tmp_path / "none")
    assert settings.require_token() == TOKEN
    masked = mask_token(TOKEN)
    assert TOKEN.split(":")[1] not in masked and "hidden" in masked


def test_env_example_lists_every_setting():
    """Every environment variable the code reads is documented in .env.example and README."""
    import re

    from tests.conftest import ROOT

    source = (ROOT / "bot" / "config.py").read_text("utf-8")
    names = set(re.findall(r'get\("([A-Z_]+)"', source))
    example = (ROOT / ".env.example").read_text("utf-8")
    readme = (ROOT / "README.md").read_text("utf-8")
    assert names, "no settings found"
    for name in names:
        assert re.search(rf"^{name}=", example, re.M), name
        assert f"`{name}`" in readme, name
