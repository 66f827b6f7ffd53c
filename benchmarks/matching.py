"""Matching speed and memory: the indexed matcher against a full scan and a naive WRatio scan.

For the real knowledge base and synthetic ones of 1k, 10k and 100k phrasings (generated
deterministically from a seed), prints build time, peak memory during the build, and p50 / p99
latency and questions per second for each method, with the ratio to the naive scan, all in the
same run on the same questions. On the real knowledge base it also prints accuracy of the index
and of the full scan on the question sets: the index must lose no accuracy (it may differ where
the full scan lets an entry that shares no rarer word with the question win).

    .venv/bin/python -m benchmarks.matching                       # everything (a few minutes)
    .venv/bin/python -m benchmarks.matching --sizes real,1000 --queries 200
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from rapidfuzz import fuzz, process

from bot.config import Settings
from bot.evaluation import load_cases, run, summarize
from bot.knowledge import Citation, Entry, KnowledgeBase, Source, Topic, load_knowledge
from bot.matching import MatchConfig, Matcher, fold

ROOT = Path(__file__).resolve().parent.parent
QUESTION_SETS = [*sorted((ROOT / "knowledge/eval").glob("*.yaml")),
                 ROOT.parent / "shared/eval/public.yaml"]
PHRASINGS_PER_ENTRY = 10
SYLLABLES = ["ka", "lo", "mi", "ra", "via", "ta", "zu", "ne", "po", "li", "shi", "an", "do",
             "gu", "ex", "pre", "sa", "ri", "tro", "bel", "con", "dy", "fen", "har"]
FILLER = ["what", "is", "the", "how", "many", "when", "did", "who", "why", "does", "plan",
          "market", "new", "platform", "sales", "growth", "customers", "logistics", "brand"]


def synthetic_kb(phrasings: int, seed: int) -> KnowledgeBase:
    """A knowledge base of made-up words with the shape of the real one, same seed same base."""
    rng = random.Random(seed)
    words = sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
                    for _ in range(max(2000, phrasings // 4))})
    source = Source("synthetic", "Synthetic", "Benchmarks", "https://example.org/", "2024")
    topics = {f"t{i}": Topic(f"t{i}", f"t{i}", f"Topic {i}", "A synthetic topic.")
              for i in range(20)}
    entries = {}
    for n in range(max(1, phrasings // PHRASINGS_PER_ENTRY)):
        own = rng.sample(words, 3)  # what this entry is about
        questions = []
        for _ in range(PHRASINGS_PER_ENTRY):
            parts = rng.sample(own, 2) + rng.sample(FILLER, rng.randint(2, 4)) + \
                [rng.choice(words) for _ in range(rng.randint(0, 2))]
            rng.shuffle(parts)
            questions.append(" ".join(parts))
        answer = " ".join(own + [rng.choice(words) for _ in range(12)]) + "."
        entries[f"e{n}"] = Entry(f"e{n}", f"t{n % 20}", tuple(questions), answer,
                                 (Citation("synthetic", answer),))
    return KnowledgeBase(MappingProxyType({"synthetic": source}), MappingProxyType(topics),
                         MappingProxyType(entries))


def synthetic_questions(kb: KnowledgeBase, count: int, seed: int) -> list[str]:
    """Phrasings as users would garble them: a word dropped, a typo, a filler word added."""
    rng = random.Random(seed + 1)
    entries = list(kb.entries.values())
    questions = []
    for _ in range(count):
        words = rng.choice(rng.choice(entries).questions).split()
        if len(words) > 3 and rng.random() < 0.5:
            words.pop(rng.randrange(len(words)))
        if rng.random() < 0.3:
            i = rng.randrange(len(words))
            w = words[i]
            if len(w) > 4:
                j = rng.randrange(1, len(w) - 1)
                words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), rng.choice(["pls", "lol", "so"]))
        questions.append(" ".join(words))
    return questions


class NaiveScan:
    """The baseline: rapidfuzz WRatio of the question against every phrasing."""

    def __init__(self, kb: KnowledgeBase):
        self.choices = [fold(q) for e in kb.entries.values() for q in e.questions]

    def match(self, question: str) -> object:
        return process.extractOne(fold(question), self.choices, scorer=fuzz.WRatio,
                                  processor=None)


@dataclass(frozen=True, slots=True)
class Row:
    kb: str
    phrasings: int
    method: str
    build_s: float
    peak_mb: float
    p50_ms: float
    p99_ms: float
    qps: float
    questions: int


def measure_build(build: Callable[[], object]) -> tuple[object, float, float]:
    gc.collect()
    started = time.perf_counter()
    built = build()
    seconds = time.perf_counter() - started
    del built
    gc.collect()
    tracemalloc.start()
    built = build()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return built, seconds, peak


def measure_queries(match: Callable[[str], object], questions: list[str]) -> tuple[float, ...]:
    for q in questions[:20]:  # warm up
        match(q)
    gc.disable()
    latencies = []
    started = time.perf_counter()
    for q in questions:
        t = time.perf_counter()
        match(q)
        latencies.append(time.perf_counter() - t)
    total = time.perf_counter() - started
    gc.enable()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies) * 1000, p99 * 1000, len(latencies) / total


def bench_size(name: str, kb: KnowledgeBase, questions: list[str], slow_cap: int) -> list[Row]:
    full_config = replace(MatchConfig(), candidate_limit=None)
    methods: list[tuple[str, Callable[[], object], int]] = [
        ("index", lambda: Matcher(kb), len(questions)),
        ("full scan", lambda: Matcher(kb, full_config), slow_cap),
        ("naive WRatio", lambda: NaiveScan(kb), slow_cap),
    ]
    rows = []
    for method, build, cap in methods:
        built, seconds, peak = measure_build(build)
        asked = questions[:cap]
        p50, p99, qps = measure_queries(built.match, asked)
        rows.append(Row(name, kb.phrasing_count, method, seconds, peak, p50, p99, qps,
                        len(asked)))
    return rows


def print_table(rows: list[Row]) -> None:
    print(f"\n{'knowledge base':<15} {'phrasings':>9} {'method':<13} {'build s':>8} "
          f"{'peak MB':>8} {'p50 ms':>8} {'p99 ms':>8} {'q/s':>9} {'vs naive p99':>13} "
          f"{'questions':>9}")
    naive = {r.kb: r for r in rows if r.method == "naive WRatio"}
    for r in rows:
        ratio = naive[r.kb].p99_ms / r.p99_ms if r.p99_ms else float("inf")
        print(f"{r.kb:<15} {r.phrasings:>9} {r.method:<13} {r.build_s:>8.2f} {r.peak_mb:>8.1f} "
              f"{r.p50_ms:>8.3f} {r.p99_ms:>8.3f} {r.qps:>9.0f} {ratio:>12.1f}x "
              f"{r.questions:>9}")


def length_check(kb: KnowledgeBase) -> None:
    """Questions are cut before matching: a 10,000-character message costs what a short one
    does."""
    matcher = Matcher(kb)
    rng = random.Random(11)
    words = [w for e in kb.entries.values() for q in e.questions for w in q.split()]
    short = [" ".join(rng.sample(words, 4)) for _ in range(300)]
    long = [" ".join(rng.choice(words) for _ in range(2000))[:10_000] for _ in range(300)]
    cut = [q[:500] for q in long]
    print("\nquestion length (real knowledge base, 300 questions each; questions are cut to "
          "500 characters before matching):")
    for label, questions in (("~25 characters", short), ("500 characters", cut),
                             ("10,000 characters", long)):
        p50, p99, qps = measure_queries(matcher.match, questions)
        print(f"  {label:<18} p50 {p50:.3f} ms  p99 {p99:.3f} ms  {qps:,.0f} questions/s")


def accuracy_check(kb: KnowledgeBase) -> None:
    print("\naccuracy on the real knowledge base (the index must lose nothing to the full scan):")
    index, full = Matcher(kb), Matcher(kb, replace(MatchConfig(), candidate_limit=None))
    for path in QUESTION_SETS:
        if not path.is_file():
            continue
        cases = load_cases(path)
        for label, matcher in (("index", index), ("full scan", full)):
            s = summarize(run(matcher, cases))
            print(f"  {path.name:<13} {label:<10} accuracy {100 * s.accuracy:5.1f}%  "
                  f"abstain {100 * s.abstain_rate:5.1f}%  wrong {100 * s.wrong_rate:4.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="real,1000,10000,100000",
                        help="comma-separated: 'real' and/or numbers of synthetic phrasings")
    parser.add_argument("--queries", type=int, default=2000, help="questions per size")
    parser.add_argument("--slow-queries", type=int, default=300,
                        help="at most this many questions for the full and naive scans")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}, one core; seed {args.seed}")
    settings = Settings.from_env()
    rows: list[Row] = []
    real_kb = None
    for size in args.sizes.split(","):
        if size == "real":
            real_kb = load_knowledge(settings.knowledge_dir)
            questions = [c.question for p in QUESTION_SETS if p.is_file()
                         for c in load_cases(p)]
            questions = (questions * (args.queries // max(1, len(questions)) + 1))[:args.queries]
            rows += bench_size("real", real_kb, questions, args.slow_queries)
        else:
            kb = synthetic_kb(int(size), args.seed)
            rows += bench_size(f"synthetic {int(size) // 1000}k", kb,
                               synthetic_questions(kb, args.queries, args.seed),
                               args.slow_queries)
        print(f"measured: {rows[-1].kb}", file=sys.stderr, flush=True)
    print_table(rows)
    if real_kb is not None:
        length_check(real_kb)
        accuracy_check(real_kb)
        started = time.perf_counter()
        Matcher(load_knowledge(settings.knowledge_dir, settings.sources_dir))
        print(f"\nreload of the real knowledge base (load, validate, verify quotes, index): "
              f"{(time.perf_counter() - started) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
