"""Choose the matcher's weights by measurement on the dev set, and print them.

Two steps, on the tuning sets (the public sample, and the newest held-out set, may be printed
with --report for information and must not drive the choice, or they stop predicting the hidden
set):
1. ranking: a random search for the `rank_weights` that put a right entry first most often;
2. abstention: a logistic regression on the best entry's signals and its margin, predicting
   whether that entry is right; then the probability threshold that maximises
   accuracy + correct abstentions - wrong_cost * confidently-wrong answers, averaged over the
   question files (each written by another hand: one population of users each), those given
   with --threshold-on included: held-out files the regression was not fitted to.

Needs numpy (a development tool, not a dependency of the bot):
    .venv/bin/pip install numpy
    SOURCES_DIR=../shared/sources .venv/bin/python scripts/tune_matcher.py knowledge/eval/dev.yaml
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np

from bot.config import Settings
from bot.evaluation import entry_answers, load_cases
from bot.knowledge import load_knowledge
from bot.matching import (
    FEATURES,
    TIE_BREAK,
    MatchConfig,
    Matcher,
    learn_word_evidence,
)


class Dataset:
    def __init__(self, matcher: Matcher, paths: list[Path]):
        self.path = Path("+".join(p.name for p in paths))
        per_file = [load_cases(p) for p in paths]
        cases = [c for file_cases in per_file for c in file_cases]
        # one cross-validation fold per question file: files were written by different hands,
        # and near-duplicates across files would leak between random folds
        self.file = np.repeat(np.arange(len(paths)), [len(f) for f in per_file])
        self.fold = self.file if len(paths) >= 3 else np.arange(len(cases)) % 5
        entries = list(matcher.kb.entries.values())
        index = {e.id: i for i, e in enumerate(entries)}
        self.feats = np.zeros((len(cases), len(entries), len(FEATURES)))
        self.scored = np.zeros((len(cases), len(entries)), dtype=bool)  # candidates only
        self.ok = np.zeros((len(cases), len(entries)), dtype=bool)
        self.valid = np.zeros(len(cases), dtype=bool)
        self.forced = np.full(len(cases), -1)  # answered before ranking (topic overview)
        for qi, case in enumerate(cases):
            prepared = matcher.prepare(case.question)
            result = matcher.match(case.question)
            self.valid[qi] = result.kind in {"answer", "gap", "abstain"}
            if result.answered and result.margin == 100.0 and result.entry is not None:
                self.forced[qi] = index[result.entry.id]
            for doc, f in matcher.features(prepared):
                self.feats[qi, index[doc.entry.id]] = f
                self.scored[qi, index[doc.entry.id]] = True
            if not case.abstain:
                for e in entries:
                    self.ok[qi, index[e.id]] = not e.gap and entry_answers(case, e)
        self.oos = np.array([c.abstain for c in cases])
        self.gap = np.array([e.gap for e in entries])  # a known gap never counts as an answer
        self.id_rank = np.argsort(np.argsort([e.id for e in entries]))

    def top(self, rank_weights):
        scores = np.where(self.scored, self.feats @ np.asarray(rank_weights), -1e9)
        # the matcher's order: best score, then a fact before a gap, then the closer wording,
        # then the entry id
        order = np.lexsort((np.broadcast_to(self.id_rank, scores.shape),
                            -self.feats[:, :, TIE_BREAK],
                            np.broadcast_to(self.gap, scores.shape), -scores), axis=1)
        rows = np.arange(len(scores))
        top = np.where(self.forced >= 0, self.forced, order[:, 0])
        margin = np.where(self.forced >= 0, 100.0,
                          scores[rows, order[:, 0]] - scores[rows, order[:, 1]])
        x = np.concatenate([self.feats[rows, top], margin[:, None]], axis=1)
        self.answerable = self.valid & ~self.gap[top]  # rows where confidence decides
        return top, x, self.ok[rows, top]

    def answered(self, p, threshold):
        """The questions the bot answers at that threshold, given each one's confidence `p`
        (after `top`; a topic's overview is always answered, a known gap never is)."""
        return self.answerable & ((p >= threshold) | (self.forced >= 0))

    def rates(self, answered, right, rows=None):
        """In-scope accuracy, correct abstentions and confidently wrong, over `rows` (a mask
        of the questions `answered` and `right` were taken from; all when None)."""
        oos = self.oos if rows is None else self.oos[rows]
        acc = (answered & right)[~oos].mean() if (~oos).any() else 1.0
        abstain = (~answered[oos]).mean() if oos.any() else 1.0
        wrong = (answered & ~right).mean()
        return acc, abstain, wrong


def fit_logistic(x, y, l2=1.0, steps=4000, lr=0.1):
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    w = np.zeros(z.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad_w = z.T @ (p - y) / len(y) + l2 * w / len(y)
        grad_b = (p - y).mean()
        w -= lr * grad_w
        b -= lr * grad_b
    raw_w = w / std
    raw_b = b - (mean * w / std).sum()
    return raw_w, raw_b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("train", type=Path, nargs="+")
    parser.add_argument("--report", type=Path, nargs="*", default=[])
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--wrong-cost", type=float, default=2.0)
    parser.add_argument("--l2", type=float, default=5.0)
    parser.add_argument("--oos-share", type=float, default=0.2,
                        help="share of out-of-scope questions expected from users (the public "
                             "sample's), for the confidently-wrong rate the threshold weighs")
    parser.add_argument("--rank-weights", type=float, nargs="+",
                        help="skip the search: rank with these weights (one per feature)")
    parser.add_argument("--shortlist", type=int, default=25,
                        help="rankings compared by cross-validating their confidence model")
    parser.add_argument("--write-evidence", action="store_true",
                        help="learn the word evidence from the knowledge base and write it to "
                             "bot/word_evidence.py before tuning")
    parser.add_argument("--curve", action="store_true",
                        help="also print the cross-validated figures at each threshold")
    parser.add_argument("--threshold-on", type=Path, nargs="*", default=[],
                        help="more question files, not fitted to, on which (with the training "
                             "files) the threshold is chosen: it then rests on confidences the "
                             "model did not learn from, and on more populations of users")
    parser.add_argument("--gap-credit", type=float, default=0.6,
                        help="weight, in ranking, of out-of-scope questions landing on a gap")
    args = parser.parse_args()
    settings = Settings.from_env()
    kb = load_knowledge(settings.knowledge_dir, settings.sources_dir)
    if args.write_evidence:
        evidence = learn_word_evidence(kb)
        path = Path(__file__).resolve().parent.parent / "bot" / "word_evidence.py"
        lines = [f"    {json.dumps(word, ensure_ascii=False)}: {value},"
                 for word, value in evidence.words.items()]
        path.write_text("\n".join([
            '"""What a word the best entry leaves unexplained says about it: log-odds per word.',
            "",
            "Written by `scripts/tune_matcher.py --write-evidence` from the knowledge base alone",
            '(see `bot.matching.learn_word_evidence`); do not edit by hand."""',
            "",
            f"UNSEEN = {evidence.unseen}",
            f"KNOWLEDGE = {json.dumps(evidence.knowledge)}  # bot.matching.phrasings_fingerprint",
            "",
            "WORDS: dict[str, float] = {", *lines, "}", ""]), "utf-8")
        print(f"wrote {path}: {len(evidence.words)} words, unseen {evidence.unseen}")
        matcher = Matcher(kb, replace(MatchConfig(), word_evidence=evidence))
    else:
        matcher = Matcher(kb)
    dev = Dataset(matcher, args.train)
    reports = [Dataset(matcher, [p]) for p in args.report]

    rng = random.Random(args.seed)
    choices = {
        "token_set": [0, 0.2, 0.4, 0.6], "token_sort": [0, 0.1, 0.2, 0.3],
        "coverage": [0, 0.2, 0.4, 0.6], "answer_coverage": [0, 0.1, 0.2, 0.4],
        "precision": [0, 0.1, 0.2, 0.3], "known_coverage": [0, 0.1, 0.2],
        "type_mismatch": [0, -0.05, -0.1, -0.2], "number_mismatch": [0, -0.05, -0.1, -0.2],
        "unknown": [0], "missing_known": [0, -0.05, -0.1], "length": [0],
        "phrasing_coverage": [0, 0.1, 0.2, 0.4], "gap": [0, -0.05, -0.1, -0.2, -0.3],
        "typed_coverage": [0, 0.1, 0.2, 0.4], "unexplained_evidence": [0, 0.05, 0.1, 0.2],
        "other_topic": [0, -0.05, -0.1, -0.2], "year_mismatch": [0, -0.1, -0.2, -0.4],
    }
    in_scope = ~dev.oos & dev.valid
    out_of_scope = dev.oos & dev.valid

    def objective_of(answered, answered_ok, data, rows):
        acc, abstain, _ = data.rates(answered[rows], answered_ok[rows], rows)
        # confidently wrong at the share of out-of-scope questions real users send, not at
        # our question sets' (which over-sample near misses)
        in_scope = rows & ~data.oos
        in_wrong = (answered & ~answered_ok)[in_scope].mean() if in_scope.any() else 0.0
        expected_wrong = (1 - args.oos_share) * in_wrong + args.oos_share * (1 - abstain)
        return acc + abstain - args.wrong_cost * expected_wrong

    def best_threshold(p, answered_ok, data):
        """The threshold with the best objective averaged over the question files: each file
        is one population of users, and pooled, the largest file (or the one richest in near
        misses) would decide alone what every user gets. The curve is jagged (one question more
        or less at each step) and flat near its top, so the pick is made on the curve smoothed
        over each step's neighbours: a raw maximum flips between runs on a one-question change."""
        thresholds = np.arange(0.2, 0.95, 0.025)
        files = [data.file == f for f in np.unique(data.file)]
        objectives = []
        for t in thresholds:
            answered = data.answered(p, t)
            objectives.append(np.mean([objective_of(answered, answered_ok, data, rows)
                                       for rows in files]))
        objectives = np.array(objectives)
        smoothed = np.convolve(np.pad(objectives, 1, mode="edge"), np.ones(3) / 3, mode="valid")
        i = int(np.argmax(smoothed))
        acc, abstain, wrong = data.rates(data.answered(p, thresholds[i]), answered_ok)
        return float(objectives[i]), float(thresholds[i]), acc, abstain, wrong

    def cross_validate(rank_weights, curve=False):
        """Leave-one-file-out cross-validation (5-fold with fewer than three files): an honest
        estimate of how the whole model does on questions written by another hand."""
        _, x, right = dev.top(rank_weights)
        y = (right & dev.valid).astype(float)
        folds = dev.fold
        cv = np.zeros(len(y))
        for k in np.unique(folds):
            train = (folds != k) & dev.answerable
            wk, bk = fit_logistic(x[train], y[train], l2=args.l2)
            cv[folds == k] = 1 / (1 + np.exp(-(x[folds == k] @ wk + bk)))
        if curve:  # what each threshold trades: for an admin choosing ANSWER_THRESHOLD
            for threshold in np.arange(0.5, 0.951, 0.05):
                answered = dev.answered(cv, threshold)
                acc, abstain, wrong = dev.rates(answered, right)
                print(f"  threshold {threshold:.2f}: accuracy {acc:.3f} abstain {abstain:.3f} "
                      f"wrong {wrong:.3f}")
        return best_threshold(cv, right, dev)

    # Step 1, ranking: a right entry first for in-scope questions, and a known gap first for the
    # others. Step 2: of the best rankings, the one whose confidence model cross-validates best.
    shipped = MatchConfig().rank_weights
    scored: dict[tuple[float, ...], float] = {}
    for trial in range(0 if args.rank_weights else args.trials):
        w = (shipped if trial == 0
             else tuple(rng.choice(choices[name]) for name in FEATURES))
        top, _, right = dev.top(w)
        scored[w] = (right[in_scope].mean() + args.gap_credit * dev.gap[top][out_of_scope].mean())
    shortlist = (sorted(scored, key=lambda w: -scored[w])[: args.shortlist] if scored
                 else [tuple(args.rank_weights)])
    if scored and shipped not in shortlist:
        # the shipped ranking always competes: a ranking score a little lower can still
        # cross-validate better, and a search that can only lose it drifts between runs
        shortlist.append(shipped)
    rank_weights = tuple(float(v) for v in max(shortlist, key=lambda w: cross_validate(w)[0]))
    top, x, right = dev.top(rank_weights)
    print(f"rank weights {rank_weights}: dev top-1 {right[in_scope].mean():.3f}, "
          f"out of scope on a gap {dev.gap[top][out_of_scope].mean():.3f}")
    for rep in reports:
        _, _, right_r = rep.top(rank_weights)
        print(f"  {rep.path.name} top-1 {right_r[~rep.oos & rep.valid].mean():.3f}")
    objective, t_cv, acc, abstain, wrong = cross_validate(rank_weights, curve=args.curve)
    print(f"cross-validated on {dev.path}: accuracy {acc:.3f} abstain {abstain:.3f} "
          f"wrong {wrong:.3f} (threshold {t_cv:.3f}, objective {objective:.4f})")

    top, x, right = dev.top(rank_weights)
    y = (right & dev.valid).astype(float)
    w, b = fit_logistic(x[dev.answerable], y[dev.answerable], l2=args.l2)
    conf_weights = (*(round(float(v), 5) for v in w), round(float(b), 4))
    pool = Dataset(matcher, [*args.train, *args.threshold_on]) if args.threshold_on else dev
    _, x_pool, right_pool = pool.top(rank_weights)
    p = 1 / (1 + np.exp(-(x_pool @ w + b)))
    _, threshold, acc, abstain, wrong = best_threshold(p, right_pool, pool)
    config = replace(matcher.config, rank_weights=rank_weights, confidence_weights=conf_weights,
                     confidence_threshold=round(threshold, 3))
    print(f"{pool.path} (fitted): accuracy {acc:.3f} abstain {abstain:.3f} wrong {wrong:.3f}")
    for rep in reports:
        _, xr, right_r = rep.top(rank_weights)
        p = 1 / (1 + np.exp(-(xr @ w + b)))
        a, ab, wr = rep.rates(rep.answered(p, threshold), right_r)
        print(f"{rep.path.name}: accuracy {a:.3f} abstain {ab:.3f} wrong {wr:.3f}")
    print(f"\nrank_weights={config.rank_weights}")
    print(f"confidence_weights={config.confidence_weights}")
    print(f"confidence_threshold={config.confidence_threshold}")


if __name__ == "__main__":
    main()
