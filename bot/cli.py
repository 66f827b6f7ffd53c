"""Command line: everything but Telegram itself, offline and without a token.

Every failure a user can cause (a missing or broken knowledge base, an empty question, an
unreadable eval file) ends in one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import __version__
from bot.config import ConfigError, Settings
from bot.evaluation import (
    EvalFileError,
    breakdown,
    conflicts,
    describe_failure,
    load_cases,
    run,
    summarize,
    verbatim_phrasings,
)
from bot.formatting import result_json, result_text
from bot.knowledge import KnowledgeBase, KnowledgeError, load_knowledge
from bot.matching import Matcher, phrasings_fingerprint, shipped_word_evidence

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code attached."""

    def __init__(self, message: str, code: int = EXIT_FAIL):
        super().__init__(message)
        self.code = code


def _load(settings: Settings) -> KnowledgeBase:
    try:
        return load_knowledge(settings.knowledge_dir, settings.sources_dir)
    except KnowledgeError as exc:
        count = len(exc.errors)
        raise CliError(f"knowledge base is invalid ({count} error(s)); first: {exc.errors[0]}"
                       f"\nrun 'python -m bot check' for the full list") from None


def _matcher(settings: Settings) -> Matcher:
    return Matcher(_load(settings), settings.match_config())


def _topic_id(matcher: Matcher, name: str | None) -> str | None:
    if name is None:
        return None
    topic = matcher.kb.topics.get(name) or matcher.kb.topic_for_command(name.lstrip("/"))
    if topic is None:
        known = ", ".join(sorted(matcher.kb.topics))
        raise CliError(f"unknown topic {name!r} (known: {known})", EXIT_USAGE)
    return topic.id


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    question = " ".join(args.question).strip()
    if not question and not args.json:
        raise CliError("the question is empty: python -m bot ask \"what is miravia\"", EXIT_USAGE)
    matcher = _matcher(settings)
    topic = _topic_id(matcher, args.topic)
    if question:
        result = matcher.match(question, topic)
        if args.json:
            print(json.dumps(result_json(matcher.kb, result), ensure_ascii=False))
        else:
            print(result_text(matcher.kb, result))
        return EXIT_OK
    # `ask --json` without a question: JSON Lines, one object per input line, in order.
    for line in sys.stdin:
        result = matcher.match(line.rstrip("\r\n"), topic)
        print(json.dumps(result_json(matcher.kb, result), ensure_ascii=False), flush=True)
    return EXIT_OK


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    matcher = _matcher(settings)
    topic = _topic_id(matcher, args.topic)
    print(f"Ask about Alibaba's cross-border e-commerce ({len(matcher.kb.entries)} facts). "
          "Empty line or Ctrl-D to quit.")
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            print()
            return EXIT_OK
        if not question:
            return EXIT_OK
        print(result_text(matcher.kb, matcher.match(question, topic)))
        print()


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    try:
        kb = load_knowledge(settings.knowledge_dir, settings.sources_dir)
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise CliError(f"{len(exc.errors)} error(s) in {settings.knowledge_dir}") from None
    for warning in kb.warnings:
        print(warning)
    print(f"knowledge: {settings.knowledge_dir}")
    print(f"sources: {len(kb.sources)}  topics: {len(kb.topics)}  entries: {len(kb.entries)}  "
          f"phrasings: {kb.phrasing_count}  synonym groups: {len(kb.synonyms)}")
    print(f"quotes verified: {kb.quotes_verified}/{kb.quotes_total}")
    if kb.unverified_reason:
        print(f"quotes unverified: {kb.unverified_reason}")
    if shipped_word_evidence().knowledge != phrasings_fingerprint(kb):
        print("word evidence: learned from another version of the knowledge base; after large "
              "changes, rerun scripts/tune_matcher.py --write-evidence (README, Matching)")
    warnings = len(kb.warnings)
    if args.conflicts:
        found = conflicts(Matcher(kb, settings.match_config()))
        for problem in found:
            print(problem)
        print(f"conflicts: {len(found)} of {kb.phrasing_count} phrasings go to another entry")
        warnings += len(found)
    if args.strict and warnings:
        raise CliError(f"{warnings} warning(s) with --strict")
    print(f"OK ({warnings} warning(s))")
    return EXIT_OK


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    matcher = _matcher(settings)
    cases = []
    for path in args.files:
        try:
            cases += load_cases(Path(path))
        except EvalFileError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    outcomes = run(matcher, cases)
    total = summarize(outcomes)
    print(f"{'topic':<18} {'in-scope':>9} {'correct':>8} {'oos':>5} {'abstain':>8} {'wrong':>6}")
    for name, s in breakdown(outcomes, matcher).items():
        acc = _pct(s.accuracy) if s.in_scope else "-"
        abst = _pct(s.abstain_rate) if s.out_of_scope else "-"
        print(f"{name:<18} {s.in_scope:>9} {acc:>8} {s.out_of_scope:>5} {abst:>8} "
              f"{s.confidently_wrong:>6}")
    failures = [o for o in outcomes if not o.correct]
    if args.failures and failures:
        print(f"\nfailures ({len(failures)}):")
        for o in failures:
            f = describe_failure(o)
            print(f"  [{f['where']} {f['kind']}] {f['question']!r}\n"
                  f"      expected {f['expected']}; got {f['got']}")
    print(f"\nquestions: {total.total}  (in scope {total.in_scope}, "
          f"out of scope {total.out_of_scope})")
    print(f"in-scope accuracy:      {_pct(total.accuracy)}  "
          f"({total.in_scope_correct}/{total.in_scope})")
    print(f"correct abstentions:    {_pct(total.abstain_rate)}  "
          f"({total.abstained}/{total.out_of_scope})")
    print(f"confidently wrong:      {_pct(total.wrong_rate)}  "
          f"({total.confidently_wrong}/{total.total})")
    print(f"right entry suggested:  {_pct(total.suggested_rate)}  "
          f"({total.suggested}/{total.not_answered} in-scope questions not answered)")
    verbatim = len(verbatim_phrasings(cases, matcher.kb))
    print(f"also a phrasing:        {_pct(verbatim / len(cases) if cases else 0.0)}  "
          f"({verbatim}/{len(cases)} questions are a phrasing word for word)")
    below = []
    if args.min_accuracy is not None and 100 * total.accuracy < args.min_accuracy:
        below.append(f"accuracy {_pct(total.accuracy).strip()} < {args.min_accuracy}%")
    if args.min_abstain is not None and 100 * total.abstain_rate < args.min_abstain:
        below.append(f"abstention {_pct(total.abstain_rate).strip()} < {args.min_abstain}%")
    if args.max_wrong is not None and 100 * total.wrong_rate > args.max_wrong:
        below.append(f"confidently wrong {_pct(total.wrong_rate).strip()} > {args.max_wrong}%")
    if below:
        raise CliError("below target: " + "; ".join(below))
    return EXIT_OK


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from bot.reports import group_unanswered, render, stats_snapshot
    from bot.store import DB_NAME, QueryLog

    if not (settings.data_dir / DB_NAME).is_file():
        raise CliError(f"no query log in {settings.data_dir} (DATA_DIR): the bot has not "
                       "logged any question there yet")
    store = QueryLog(settings.data_dir)
    since = time.time() - args.days * 86400 if args.days else None
    rows, votes = store.rows(since), store.votes(since)
    store.close()
    if rows is None or votes is None:
        raise CliError(f"could not read the query log in {settings.data_dir}")
    print(render(stats_snapshot(rows, votes, time.time()), group_unanswered(rows, args.limit),
                 args.format, args.days))
    return EXIT_OK


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import run, setup_logging

    settings.require_token()  # a one-line error before anything else starts
    if args.webhook:
        from bot.app import validate_webhook

        validate_webhook(settings)
    _load(settings)  # a broken knowledge base is a clean error, not a traceback at start-up
    setup_logging(settings)
    run(settings, webhook=args.webhook, watch=args.watch)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Answer questions about Chinese cross-border e-commerce from a curated, "
                    "cited knowledge base. Works offline; only 'run' needs a Telegram token.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("ask", help="answer one question, with citations",
                       description="Answer a question with its citations, or abstain with "
                                   "suggestions. With --json and no question, read one question "
                                   "a line from stdin and write one JSON object a line.")
    p.add_argument("question", nargs="*", help="the question (quote it in the shell)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--topic", help="only answer from this topic (id or command, e.g. miravia)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="ask questions interactively in the terminal",
                       description="An interactive loop with the same engine as the bot.")
    p.add_argument("--topic", help="only answer from this topic")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("check", help="validate the knowledge base and verify every quote",
                       description="Validate every file under KNOWLEDGE_DIR and check each quote "
                                   "against the source texts in SOURCES_DIR. Exit 1 on errors.")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("--conflicts", action="store_true",
                   help="also match every phrasing and list those another entry wins")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("eval", help="measure accuracy on question files",
                       description="Top-1 accuracy on in-scope questions, correct abstentions on "
                                   "out-of-scope ones and the confidently-wrong rate.")
    p.add_argument("files", nargs="+", metavar="FILE", help="YAML question file(s)")
    p.add_argument("--min-accuracy", type=float, metavar="PCT",
                   help="exit 1 if in-scope accuracy is below PCT percent")
    p.add_argument("--min-abstain", type=float, metavar="PCT",
                   help="exit 1 if the correct-abstention rate is below PCT percent")
    p.add_argument("--max-wrong", type=float, metavar="PCT",
                   help="exit 1 if the confidently-wrong rate is above PCT percent")
    p.add_argument("--no-failures", dest="failures", action="store_false",
                   help="do not list the failed questions")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("run", help="run the Telegram bot (needs BOT_TOKEN)",
                       description="Run the Telegram bot: long polling by default, or a webhook "
                                   "server with --webhook (WEBHOOK_URL, WEBHOOK_SECRET, "
                                   "WEBHOOK_LISTEN, WEBHOOK_PORT).")
    p.add_argument("--webhook", action="store_true", help="serve a webhook instead of polling")
    p.add_argument("--watch", action="store_true",
                   help="reload the knowledge base when a file in KNOWLEDGE_DIR changes")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="usage statistics and unanswered questions",
                       description="What people asked, from the query log in DATA_DIR: counts, "
                                   "answer rate, top entries and topics, feedback, and the "
                                   "unanswered questions grouped, most frequent first.")
    p.add_argument("--days", type=int, default=None, metavar="N",
                   help="only the last N days (default: everything kept)")
    p.add_argument("--format", choices=["text", "csv", "json"], default="text",
                   help="text (default), csv (the unanswered groups) or json (everything)")
    p.add_argument("--limit", type=int, default=20, metavar="N",
                   help="at most N unanswered groups (default 20)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return args.func(args, settings)
    except (CliError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code if isinstance(exc, CliError) else EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
