"""Choose the matcher's weights and thresholds by measurement on the dev set.

Computes every entry's signals once per dev question, then searches weight/threshold settings
and prints the best ones with their accuracy, abstention and confidently-wrong rates. Tune on the
dev set only; the public sample is printed for information and must not drive the choice.

Needs numpy (a development tool, not a dependency of the bot):
    .venv/bin/pip install numpy
    SOURCES_DIR=../shared/sources .venv/bin/python scripts/tune_matcher.py knowledge/eval/dev.yaml
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from bot.config import Settings
from bot.evaluation import judge, load_cases
from bot.knowledge import load_knowledge
from bot.matching import MatchConfig, Matcher, MatchResult


def feature_tensor(matcher: Matcher, cases):
    entries = list(matcher.kb.entries.values())
    index = {e.id: i for i, e in enumerate(entries)}
    feats = np.zeros((len(cases), len(entries), 7))
    ok = np.zeros((len(cases), len(entries)), dtype=bool)
    valid = np.zeros(len(cases), dtype=bool)  # False: greeting/empty, never answered
    topic_of = np.array([list(matcher.kb.topics).index(e.topic) for e in entries])
    for qi, case in enumerate(cases):
        prepared = matcher.prepare(case.question)
        valid[qi] = bool(prepared.content)
        for doc, f in matcher.features(prepared):
            feats[qi, index[doc.entry.id]] = f
        if not case.abstain:
            for e in entries:
                ok[qi, index[e.id]] = judge(case, MatchResult(case.question, e, 100, True))
    oos = np.array([c.abstain for c in cases])
    return feats, ok, valid, oos, topic_of


def evaluate(scores, ok, valid, oos, topic_of, threshold, margin, sure, cross_topic):
    order = np.argsort(-scores, axis=1, kind="stable")
    top = order[:, 0]
    rows = np.arange(len(scores))
    best = scores[rows, top]
    if cross_topic:
        other = np.where(topic_of[None, :] != topic_of[top][:, None], scores, -1e9)
        second = other.max(axis=1)
    else:
        second = scores[rows, order[:, 1]]
    answered = valid & (best >= threshold) & ((best - second >= margin) | (best >= sure))
    correct_in = answered & ok[rows, top] & ~oos
    acc = correct_in[~oos].mean()
    abst = (~answered[oos]).mean()
    wrong = (answered & ~ok[rows, top]).mean()
    return acc, abst, wrong


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dev", type=Path)
    parser.add_argument("--report", type=Path, nargs="*", default=[])
    parser.add_argument("--trials", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings = Settings.from_env()
    kb = load_knowledge(settings.knowledge_dir, settings.sources_dir)
    matcher = Matcher(kb)
    dev = feature_tensor(matcher, load_cases(args.dev))
    reports = [(p, feature_tensor(matcher, load_cases(p))) for p in args.report]
    rng = random.Random(args.seed)
    results = []
    for _ in range(args.trials):
        w = [rng.choice([0, 0.1, 0.2, 0.3, 0.4, 0.5]) for _ in range(5)]
        if sum(w) == 0:
            continue
        tp = rng.choice([0, 5, 10, 15, 20])
        up = rng.choice([0, 10, 20, 30, 50])
        feats = dev[0]
        scores = (feats[..., :5] @ np.array(w)) / sum(w) - tp * feats[..., 5] / 100 \
            - up * feats[..., 6] / 100
        for threshold in range(50, 92, 2):
            for margin in (0, 2, 4, 6, 8):
                for sure in (85, 90, 95, 200):
                    for cross in (False, True):
                        acc, abst, wrong = evaluate(scores, *dev[1:], threshold, margin, sure,
                                                    cross)
                        objective = acc + abst - 4 * wrong
                        results.append((objective, acc, abst, wrong,
                                        (w, tp, up, threshold, margin, sure, cross)))
    results.sort(key=lambda r: -r[0])
    for objective, acc, abst, wrong, cfg in results[:15]:
        line = f"{objective:.3f} acc {acc:.3f} abst {abst:.3f} wrong {wrong:.3f} {cfg}"
        w, tp, up, threshold, margin, sure, cross = cfg
        for path, rep in reports:
            feats = rep[0]
            scores = (feats[..., :5] @ np.array(w)) / sum(w) - tp * feats[..., 5] / 100 \
                - up * feats[..., 6] / 100
            a, b, c = evaluate(scores, *rep[1:], threshold, margin, sure, cross)
            line += f" | {path.name}: acc {a:.3f} abst {b:.3f} wrong {c:.3f}"
        print(line)
    print("current:", MatchConfig())


if __name__ == "__main__":
    main()
