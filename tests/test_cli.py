"""The command line, run as a user runs it: a subprocess, exit codes, stdout and stderr."""

from __future__ import annotations

import json
import re

import pytest

from bot.cli import build_parser
from tests.conftest import DEV_SET, PUBLIC_SET, ROOT

JSON_KEYS = ["question", "answered", "kind", "entry_id", "gap_id", "topic", "score", "answer",
             "citations", "also", "suggestions"]


def test_ask_prints_a_cited_answer(run_cli):
    out = run_cli("ask", "whats miravia")
    assert out.returncode == 0, out.stderr
    assert "Miravia" in out.stdout
    assert "“" in out.stdout  # the quote
    assert "Cross-border update: Alibaba" in out.stdout
    assert "https://www.chinatalk.nl/cross-border-update-alibaba/" in out.stdout


def test_ask_abstains_with_suggestions(run_cli):
    out = run_cli("ask", "weather in madrid")
    assert out.returncode == 0, out.stderr
    assert "not sure" in out.stdout
    assert "Did you mean" in out.stdout
    assert len(re.findall(r"^  - ", out.stdout, re.M)) >= 1


def test_ask_json_has_exactly_the_documented_shape(run_cli):
    out = run_cli("ask", "--json", "lazda ceo")
    data = json.loads(out.stdout)
    assert list(data) == JSON_KEYS
    assert data["answered"] is True and data["topic"] == "lazada"
    assert "James Dong" in data["answer"]
    assert data["citations"] and set(data["citations"][0]) == {"source", "title", "url", "quote"}
    for suggestion in data["suggestions"]:
        assert set(suggestion) == {"entry_id", "question"}


def test_ask_json_batch_reads_stdin_line_by_line(run_cli):
    questions = ["whats miravia", "weather in madrid", "hi", "", "trendyol germany target",
                 "🤔"]
    out = run_cli("ask", "--json", stdin="\n".join(questions) + "\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["question"] for r in rows] == questions
    assert [r["answered"] for r in rows] == [True, False, False, False, True, False]
    for row in rows:
        assert list(row) == JSON_KEYS
        if not row["answered"]:
            assert row["entry_id"] is None and row["citations"] == []


def test_ask_with_topic_scope(run_cli):
    out = run_cli("ask", "--json", "--topic", "miravia", "coupon")
    assert json.loads(out.stdout)["topic"] == "miravia"
    bad = run_cli("ask", "--topic", "nosuch", "coupon")
    assert bad.returncode == 2 and "unknown topic" in bad.stderr


def test_empty_question_is_a_one_line_error(run_cli):
    out = run_cli("ask", "   ")
    assert out.returncode == 2
    assert out.stderr.startswith("error:") and "Traceback" not in out.stderr


def test_check_passes_and_counts(run_cli):
    out = run_cli("check")
    assert out.returncode == 0, out.stderr
    assert re.search(r"quotes verified: (\d+)/\1", out.stdout)
    assert "entries:" in out.stdout and "OK" in out.stdout


CONFLICTING = """\
entries:
  - id: miravia-zz-start
    topic: miravia
    questions:
      - launch date of miravia
      - when did miravia start
    answer: Miravia launched in Spain in November.
    citations:
      - source: src
        quote: "Miravia launched in Spain in November."
"""


def test_check_conflicts_names_phrasings_another_entry_wins(run_cli, make_kb):
    kdir, _ = make_kb({"extra.yaml": CONFLICTING})
    plain = run_cli("check", env={"KNOWLEDGE_DIR": str(kdir)})
    assert plain.returncode == 0 and "is matched to" not in plain.stdout
    out = run_cli("check", "--conflicts", env={"KNOWLEDGE_DIR": str(kdir)})
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if "is matched to" in ln]
    assert lines and all(re.match(r"\S+\.yaml:\d+: \[miravia-", ln) for ln in lines)
    assert re.search(r"conflicts: [1-9]\d* of \d+ phrasings", out.stdout)
    strict = run_cli("check", "--conflicts", "--strict", env={"KNOWLEDGE_DIR": str(kdir)})
    assert strict.returncode == 1 and "with --strict" in strict.stderr


def test_check_says_when_the_word_evidence_was_learned_elsewhere(run_cli, make_kb):
    kdir, _ = make_kb()
    other = run_cli("check", "--strict", env={"KNOWLEDGE_DIR": str(kdir)})
    assert other.returncode == 0  # a note for curators, not a fault
    assert "word evidence: learned from another version" in other.stdout


def test_check_without_sources_says_quotes_unverified(run_cli):
    out = run_cli("check", env={"SOURCES_DIR": ""})
    assert out.returncode == 0
    assert "quotes unverified" in out.stdout


@pytest.mark.parametrize("command", [["check"], ["ask", "what is miravia"], ["eval", str(DEV_SET)]])
def test_broken_knowledge_base_is_a_clean_error(run_cli, make_kb, command):
    kdir, _ = make_kb({"broken.yaml": "entries: [unclosed\n"})
    out = run_cli(*command, env={"KNOWLEDGE_DIR": str(kdir)})
    assert out.returncode == 1
    assert "broken.yaml" in out.stderr and "Traceback" not in out.stderr


def test_missing_knowledge_dir_is_a_clean_error(run_cli, tmp_path):
    out = run_cli("ask", "x", env={"KNOWLEDGE_DIR": str(tmp_path / "nope")})
    assert out.returncode == 1
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_eval_reads_the_public_sample_as_it_is(run_cli):
    out = run_cli("eval", str(PUBLIC_SET), "--no-failures")
    assert out.returncode == 0, out.stderr
    assert "in-scope accuracy" in out.stdout and "correct abstentions" in out.stdout
    assert "confidently wrong" in out.stdout and "right entry suggested" in out.stdout
    assert re.search(r"also a phrasing: +[\d.]+%  \(\d+/66 questions", out.stdout)


def test_answer_threshold_setting_reaches_the_matcher(run_cli):
    question = "who became lazada's ceo"
    assert json.loads(run_cli("ask", "--json", question).stdout)["answered"] is True
    strict = run_cli("ask", "--json", question, env={"ANSWER_THRESHOLD": "0.999"})
    assert json.loads(strict.stdout)["answered"] is False
    bad = run_cli("ask", question, env={"ANSWER_THRESHOLD": "2"})
    assert bad.returncode == 2 and "ANSWER_THRESHOLD" in bad.stderr


def test_eval_thresholds_set_the_exit_code(run_cli):
    assert run_cli("eval", str(DEV_SET), "--min-accuracy", "0").returncode == 0
    failing = run_cli("eval", str(DEV_SET), "--min-accuracy", "100.1")
    assert failing.returncode == 1 and "below target" in failing.stderr
    assert run_cli("eval", str(DEV_SET), "--max-wrong", "-1").returncode == 1


def test_eval_bad_file_is_a_clean_error(run_cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- q: no expectation\n")
    out = run_cli("eval", str(bad))
    assert out.returncode == 2 and "item 1" in out.stderr


def test_readme_documents_every_command_and_option():
    """The README's CLI section stays honest: every sub-command and option is mentioned."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():
        assert f"python -m bot {name}" in section, name
        for action in sub._actions:
            for option in action.option_strings:
                if option not in {"-h", "--help"}:
                    assert option in section, f"{name} {option}"


def test_help_texts_describe_each_command(run_cli):
    out = run_cli("--help")
    for name in ("ask", "chat", "check", "eval"):
        assert name in out.stdout


def test_chat_loop_answers_until_eof(run_cli):
    out = run_cli("chat", stdin="lazada ceo\nweather in madrid\n")
    assert out.returncode == 0
    assert "James Dong" in out.stdout and "not sure" in out.stdout


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text("utf-8")
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```sh\n")[1:]]
    install_and_ask, install_and_test = blocks[0], blocks[1]
    assert "bot ask" in install_and_ask and "pytest" in install_and_test
    assert install_and_test in (ROOT / ".ci" / "run").read_text("utf-8")
