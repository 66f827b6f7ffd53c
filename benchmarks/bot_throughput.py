"""End-to-end throughput: the bot against a bare echo bot, over the same fake Bot API.

Both are python-telegram-bot Applications built the same way (HTML defaults, concurrent
updates, long polling over real HTTP on 127.0.0.1), fed the same N private questions from N/4
users. The echo bot replies with the text; the bot matches, formats a cited answer with buttons
and writes the query log. Prints updates per second for each and their ratio, in one run.

Telegram's own flood limits (AIORateLimiter) are left out of both, since they would cap both at
Telegram's rate and hide the bot's own cost.

    .venv/bin/python -m benchmarks.bot_throughput               # 2,000 updates
    .venv/bin/python -m benchmarks.bot_throughput --updates 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import Application, ContextTypes, Defaults, MessageHandler, filters

from bot.app import SERVICES_KEY, Services, post_init
from bot.config import Settings
from bot.evaluation import load_cases
from bot.handlers import register
from bot.knowledge import load_knowledge
from bot.matching import Matcher
from bot.store import QueryLog
from bot.throttle import RateLimiter
from tests import fake_bot_api as tg

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123123123:AABenchmarkTokenForThroughput_0123456"


def base_builder(fake: FakeProcess) -> Application:
    return (Application.builder().token(TOKEN).base_url(fake.base_url)
            .defaults(Defaults(parse_mode=ParseMode.HTML)).concurrent_updates(True).build())


def real_bot(fake: FakeProcess, data_dir: Path) -> Application:
    settings = Settings(bot_token=TOKEN, data_dir=data_dir)
    app = base_builder(fake)
    app.bot_data[SERVICES_KEY] = Services(settings, Matcher(load_knowledge(settings.knowledge_dir)),
                                          RateLimiter(limit=1000), QueryLog(data_dir))
    register(app)
    return app


def echo_bot(fake: FakeProcess, data_dir: Path) -> Application:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(update.effective_message.text)

    app = base_builder(fake)
    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app


class FakeProcess:
    """The fake Bot API in its own process, so its cost does not share the bot's core."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fake_bot_api", TOKEN],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.base_url = self.proc.stdout.readline().strip()
        self.control = self.base_url.rsplit("/bot", 1)[0] + "/_fake"

    def post(self, path: str, payload: object) -> dict:
        request = urllib.request.Request(f"{self.control}/{path}", json.dumps(payload).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def sent(self) -> int:
        return self.post("count/sendMessage", None)["count"]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def measure(build, questions: list[str], data_dir: Path) -> float:
    fake = FakeProcess()
    try:
        app = build(fake, data_dir)
        async with app:
            if SERVICES_KEY in app.bot_data:
                await post_init(app)
            fake.post("updates", [
                {**tg.message(q, chat_id=u, user_id=u, message_id=i + 1)}
                for i, q in enumerate(questions)
                for u in [10_000 + i % max(1, len(questions) // 4)]])
            baseline = fake.sent()
            started = time.perf_counter()
            await app.updater.start_polling(poll_interval=0.0, timeout=1)
            await app.start()
            deadline = started + 600
            while fake.sent() < baseline + len(questions) and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            done = fake.sent() >= baseline + len(questions)
            await app.updater.stop()
            await app.stop()
        if not done:
            raise SystemExit("not every update was answered")
        return len(questions) / elapsed
    finally:
        fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="best of this many runs each")
    args = parser.parse_args()
    pool = [c.question for c in load_cases(ROOT / "knowledge/eval/dev.yaml")]
    questions = [q for q in (pool * (args.updates // len(pool) + 1))[:args.updates]]
    echo_runs, bot_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):  # alternate, so warm-up and drift hit both alike
            echo_runs.append(asyncio.run(measure(echo_bot, questions, Path(tmp) / f"e{round_}")))
            bot_runs.append(asyncio.run(measure(real_bot, questions, Path(tmp) / f"b{round_}")))
    echo, bot = max(echo_runs), max(bot_runs)
    print(f"updates: {args.updates} private questions over HTTP to a fake Bot API on 127.0.0.1")
    print(f"echo bot: {echo:8.0f} updates/s (best of {', '.join(f'{r:.0f}' for r in echo_runs)})")
    print(f"bot:      {bot:8.0f} updates/s (best of {', '.join(f'{r:.0f}' for r in bot_runs)})")
    print(f"ratio:    {100 * bot / echo:7.1f}% of the echo bot")


if __name__ == "__main__":
    main()
