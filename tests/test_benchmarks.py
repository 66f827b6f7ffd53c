"""The benchmark scripts run (on tiny sizes); their figures are for people, not for asserts."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.matching import synthetic_kb, synthetic_questions
from bot.matching import Matcher
from tests.conftest import ROOT


def run_module(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_matching_benchmark_runs_on_tiny_sizes():
    out = run_module("benchmarks.matching", "--sizes", "real,300", "--queries", "40",
                     "--slow-queries", "10")
    for method in ("index", "full scan", "naive WRatio"):
        assert out.count(method) >= 2
    assert "synthetic 0k" in out and "accuracy on the real knowledge base" in out
    assert "reload of the real knowledge base" in out


def test_throughput_benchmark_runs_on_a_few_updates():
    out = run_module("benchmarks.bot_throughput", "--updates", "30", "--rounds", "1")
    assert "echo bot:" in out and "ratio:" in out


def test_synthetic_knowledge_base_is_deterministic_and_matchable():
    first, second = synthetic_kb(500, 3), synthetic_kb(500, 3)
    assert dict(first.entries) == dict(second.entries)
    assert first.phrasing_count == 500
    questions = synthetic_questions(first, 20, 3)
    assert questions == synthetic_questions(second, 20, 3)
    matcher = Matcher(first)
    assert sum(matcher.match(q).best_id is not None for q in questions) >= 15
