"""Running `python -m bot run` in a subprocess against the fake Bot API, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests import fake_bot_api as tg
from tests.conftest import KNOWLEDGE_DIR


class BotProcess:
    """`python -m bot run` in a subprocess, logging at DEBUG into a file."""

    def __init__(self, tmp_path: Path, sources_dir: Path, fake: tg.FakeBotAPI, token: str,
                 *args: str, knowledge_dir: Path = KNOWLEDGE_DIR,
                 extra_env: dict[str, str] | None = None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "WEBHOOK_"))}
        env.update({"BOT_TOKEN": token, "TELEGRAM_BASE_URL": fake.base_url,
                    "LOG_LEVEL": "DEBUG", "KNOWLEDGE_DIR": str(knowledge_dir),
                    "SOURCES_DIR": str(sources_dir), "DATA_DIR": str(tmp_path / "data"),
                    "PYTHONUNBUFFERED": "1"})
        self.log_path = tmp_path / "bot.log"
        self._log = self.log_path.open("w")
        env.update(extra_env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run", *args], cwd=tmp_path,
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> str:
        """Stop as an operator would (SIGINT), and return everything it logged."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.log_path.read_text()
