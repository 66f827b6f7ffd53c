"""Shared fixtures: the real knowledge base, the source texts, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.knowledge import KnowledgeBase, load_knowledge
from bot.matching import Matcher

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = ROOT / "knowledge"
# The source texts live beside the project (../shared/sources); SOURCES_DIR may point elsewhere.
SOURCES_DIR = Path(os.environ.get("SOURCES_DIR") or ROOT.parent / "shared" / "sources").resolve()
DEV_SET = KNOWLEDGE_DIR / "eval" / "dev.yaml"
HOLDOUT_SET = KNOWLEDGE_DIR / "eval" / "holdout.yaml"
CHAT_SET = KNOWLEDGE_DIR / "eval" / "chat.yaml"
NEARMISS_SET = KNOWLEDGE_DIR / "eval" / "nearmiss.yaml"
ANALYSTS_SET = KNOWLEDGE_DIR / "eval" / "analysts.yaml"
PRACTITIONERS_SET = KNOWLEDGE_DIR / "eval" / "practitioners.yaml"
# The held-out sets: the weights are never fitted on them (the threshold is chosen on all but the
# newest, see README), but their failures have been read to find causes (see each header), so
# only the newest is an untouched estimate.
HELDOUT_SET = KNOWLEDGE_DIR / "eval" / "heldout.yaml"
FRESH_SET = KNOWLEDGE_DIR / "eval" / "fresh.yaml"
BLIND_SET = KNOWLEDGE_DIR / "eval" / "blind.yaml"
BLIND2_SET = KNOWLEDGE_DIR / "eval" / "blind2.yaml"
BLIND3_SET = KNOWLEDGE_DIR / "eval" / "blind3.yaml"
BLIND4_SET = KNOWLEDGE_DIR / "eval" / "blind4.yaml"
BLIND5_SET = KNOWLEDGE_DIR / "eval" / "blind5.yaml"
BLIND6_SET = KNOWLEDGE_DIR / "eval" / "blind6.yaml"
BLIND7_SET = KNOWLEDGE_DIR / "eval" / "blind7.yaml"  # untouched: measured once, see its header
PUBLIC_SET = ROOT.parent / "shared" / "eval" / "public.yaml"


@pytest.fixture(scope="session")
def sources_dir() -> Path:
    # Never skip: without the source texts no quote can be verified, and that must fail loudly.
    assert (SOURCES_DIR / "chinatalk-cross-border-update-alibaba.txt").is_file(), (
        f"source texts not found in {SOURCES_DIR}; set SOURCES_DIR"
    )
    return SOURCES_DIR


@pytest.fixture(scope="session")
def kb(sources_dir: Path) -> KnowledgeBase:
    return load_knowledge(KNOWLEDGE_DIR, sources_dir)


@pytest.fixture(scope="session")
def matcher(kb: KnowledgeBase) -> Matcher:
    return Matcher(kb)


SOURCES_YAML = """\
sources:
  - id: src
    title: "Test source"
    publisher: Tests
    url: https://example.org/article
    published: 2022
    file: article.txt
"""

ARTICLE = (
    "Miravia launched in Spain in November. It offers a coupon of 30% off with a maximum of €20.\n"
    "Lazada’s new CEO is James Dong, its fifth CEO in 5 years.\n"
)

TOPIC_YAML = """\
topic:
  id: miravia
  command: miravia
  title: Miravia
  aliases: [miravai]
  summary: A Spanish shop.
entries:
  - id: miravia-launch
    questions:
      - when did miravia launch
      - miravia launch date
    answer: Miravia launched in Spain in November.
    citations:
      - source: src
        quote: "Miravia launched in Spain in November."
  - id: miravia-coupon
    questions:
      - what coupon does miravia give
      - miravia discount
    answer: New customers get 30% off, at most €20.
    citations:
      - source: src
        quote: "It offers a coupon of 30% off with a maximum of €20."
    related: [miravia-launch]
"""


@pytest.fixture
def make_kb(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Write a small knowledge dir (and its source text); override or add files by name."""

    def make(files: dict[str, str | bytes] | None = None, *, base: bool = True
             ) -> tuple[Path, Path]:
        kdir = tmp_path / "knowledge"
        sdir = tmp_path / "sources"
        kdir.mkdir(exist_ok=True)
        sdir.mkdir(exist_ok=True)
        (sdir / "article.txt").write_text(ARTICLE, "utf-8")
        content: dict[str, str | bytes] = (
            {"sources.yaml": SOURCES_YAML, "miravia.yaml": TOPIC_YAML} if base else {}
        )
        content.update(files or {})
        for name, text in content.items():
            path = kdir / name
            if isinstance(text, bytes):
                path.write_bytes(text)
            else:
                path.write_text(textwrap.dedent(text), "utf-8")
        return kdir, sdir

    return make


@pytest.fixture
def run_cli(tmp_path: Path, sources_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m bot ...` as a user would, in a clean directory with no .env."""

    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items()
                    if k not in {"KNOWLEDGE_DIR", "BOT_TOKEN", "DATA_DIR"}}
        full_env.update({"SOURCES_DIR": str(sources_dir), "PYTHONIOENCODING": "utf-8"})
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
            cwd=tmp_path, env=full_env, timeout=120,
        )

    return run
