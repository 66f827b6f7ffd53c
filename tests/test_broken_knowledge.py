"""A corpus of broken knowledge directories: `check` and /reload report each one clearly and
promptly, in bounded memory, and never swap a broken base in."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import build_application, load_services, post_init, services
from bot.config import Settings
from tests import fake_bot_api as tg
from tests.conftest import KNOWLEDGE_DIR, ROOT

TOKEN = "444555666:AABrokenKnowledgeTestToken_abcdefghij"
ADMIN = 77


def copy_of_real(target: Path) -> None:
    for path in KNOWLEDGE_DIR.glob("*.yaml"):
        shutil.copy(path, target / path.name)


def add(name: str, content: str | bytes) -> Callable[[Path], None]:
    def build(target: Path) -> None:
        copy_of_real(target)
        path = target / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return build


def edit(name: str, change: Callable[[str], str]) -> Callable[[Path], None]:
    def build(target: Path) -> None:
        copy_of_real(target)
        path = target / name
        path.write_text(change(path.read_text()))
    return build


BILLION_LAUGHS = "\n".join(
    ["a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]"
       for i in range(8)]) + "\n"

CORPUS: dict[str, tuple[Callable[[Path], None], str]] = {
    "yaml syntax error": (add("bad.yaml", "entries:\n  - id: x\n    questions: [a, b\n"),
                          "bad.yaml:"),
    "tab indentation": (add("bad.yaml", "entries:\n\t- id: x\n"), "bad.yaml:"),
    "wrong types": (edit("lazada.yaml", lambda t: t.replace("questions:", "questions: 42\n"
                                                            "    old_questions:", 1)),
                    "lazada.yaml:"),
    "unknown keys": (edit("trendyol.yaml", lambda t: t.replace("  title:", "  titel:", 1)),
                     "unknown key 'titel'"),
    "duplicate ids": (add("dup.yaml", "entries:\n  - id: lazada-ceo\n    topic: lazada\n"
                          "    questions: [x]\n    answer: y\n    citations:\n"
                          "      - {source: chinatalk-alibaba, quote: \"Jiang Fan\"}\n"),
                      "duplicate entry id 'lazada-ceo'"),
    "dangling references": (edit("miravia.yaml", lambda t: t.replace(
        "follow_up: [", "follow_up: [no-such-entry, ", 1)), "unknown entry 'no-such-entry'"),
    "file of many megabytes": (add("huge.yaml", "# " + "x" * 8_000_000 + "\n"),
                               "a knowledge file may hold at most"),
    "deeply nested": (add("deep.yaml", "entries: " + "[" * 50_000 + "]" * 50_000 + "\n"),
                      "deep.yaml"),
    "billion laughs": (add("bomb.yaml", BILLION_LAUGHS), "anchors and aliases"),
    "not utf-8": (add("latin1.yaml", "entries: []\n# café\n".encode("latin-1")),
                  "not UTF-8"),
    "binary junk": (add("junk.yaml", bytes(range(256)) * 100), "junk.yaml"),
    "empty directory": (lambda target: None, "no .yaml files"),
    "only an empty file": (lambda target: (target / "empty.yaml").write_text(""),
                           "no sources are defined"),
}
# Unreadable files: tests/test_knowledge.py (simulated, since CI runs as root and root reads
# any file whatever its mode).


@pytest.mark.parametrize("case", list(CORPUS))
def test_check_reports_each_broken_base_promptly_in_bounded_memory(tmp_path, sources_dir,
                                                                   case):
    build, expected = CORPUS[case]
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    build(knowledge)

    def limit_memory() -> None:  # 1 GiB of address space: a blow-up fails instead of swapping
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))

    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "bot", "check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, preexec_fn=limit_memory,
                         env={"PATH": "/usr/bin:/bin", "KNOWLEDGE_DIR": str(knowledge),
                              "SOURCES_DIR": str(sources_dir)})
    elapsed = time.monotonic() - started
    assert out.returncode == 1, out.stdout + out.stderr
    assert expected in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "MemoryError" not in out.stderr
    assert elapsed < 20, f"took {elapsed:.1f} s"


@pytest.mark.parametrize("case", [c for c in CORPUS if c not in {"empty directory",
                                                                  "only an empty file"}])
async def test_reload_never_swaps_a_broken_base_in(tmp_path, sources_dir, case):
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    copy_of_real(knowledge)
    fake = tg.FakeBotAPI(TOKEN)
    settings = Settings(bot_token=TOKEN, admin_ids=frozenset({ADMIN}), knowledge_dir=knowledge,
                        sources_dir=sources_dir, data_dir=tmp_path / "data")
    app = build_application(settings, load_services(settings), request=tg.FakeRequest(fake))
    async with app:
        await post_init(app)
        before = services(app).matcher
        for path in knowledge.iterdir():
            path.unlink()
        CORPUS[case][0](knowledge)
        await tg.feed(app, tg.message("/reload", chat_id=ADMIN, user_id=ADMIN))
        assert services(app).matcher is before
        assert fake.sent()[-1].params["text"].startswith("<b>Reload refused</b>")
        await tg.feed(app, tg.message("lazda ceo", chat_id=5, user_id=5))
        assert "James Dong" in fake.sent()[-1].params["text"]
