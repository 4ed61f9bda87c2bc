"""The `helpdesk` command end to end, as a user runs it, with the real packaged embedding model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, TEST_MODEL_CACHE, write

pytestmark = pytest.mark.slow

HELPDESK = [sys.executable, "-m", "connectors"]


def run(*args: str, data_dir, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    # The brand-voice rewrite has its own tests (test_tone.py); here the answers are checked as composed.
    environment = {
        **os.environ,
        "HELPDESK_DATA_DIR": str(data_dir),
        "HELPDESK_LOG_LEVEL": "WARNING",
        "HELPDESK_TONE_ENABLED": "false",
        "HELPDESK_MODEL_CACHE_DIR": str(TEST_MODEL_CACHE),
        **env,
    }
    result = subprocess.run([*HELPDESK, *args], capture_output=True, text=True, env=environment, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"helpdesk {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def synced_sample(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("sample-data")
    result = run("sync", "--json", data_dir=data_dir)
    return data_dir, json.loads(result.stdout)


def test_sync_of_the_sample_knowledge_base(synced_sample):
    _, report = synced_sample
    assert report["added"] >= 40 and report["skipped"] == [] and report["chunks_embedded"] > 100


def test_search_finds_the_right_article(synced_sample):
    data_dir, _ = synced_sample
    result = json.loads(
        run("search", "how long do refunds take to show up?", "--json", data_dir=data_dir).stdout
    )
    ids = [r["doc_id"] for r in result["results"]]
    assert "billing/refund-policy" in ids[:3]
    assert 0 < result["confidence"] <= 1
    human = run("search", "SAML single sign-on", "--k", "2", data_dir=data_dir).stdout
    assert "web/sso-setup" in human


def test_eval_reports_per_kind_metrics_and_scores_every_answer(synced_sample, tmp_path):
    data_dir, _ = synced_sample
    questions = REPO / "examples" / "acme-kb-questions.jsonl"
    answers_out = tmp_path / "answers.jsonl"
    # The quoting writer keeps this fast; the local model's answers are scored in test_answers_local.py.
    result = json.loads(
        run(
            "eval", str(questions), "--json", "--answers-out", str(answers_out),
            data_dir=data_dir, HELPDESK_GENERATOR="extractive",
        ).stdout
    )  # fmt: skip
    paraphrase = result["by_kind"]["paraphrase"]
    assert paraphrase["n"] == 43 and paraphrase["hit@5"] >= 0.9 and paraphrase["mrr@10"] >= 0.8
    assert result["by_kind"]["unanswerable"] == {"n": 17}
    assert result["abstention_auroc"] > 0.7 and result["n_questions"] == 60
    verdicts = result["answers"]["verdicts"]
    assert verdicts["n"] == 60 and verdicts["correct"] + verdicts["missing"] + verdicts["wrong"] == 60
    assert verdicts["score"] == round((verdicts["correct"] - verdicts["wrong"]) / 60, 4)
    records = [json.loads(line) for line in answers_out.read_text().splitlines()]
    assert len(records) == 60
    assert set(records[0]) >= {"id", "question", "answer", "refused", "citations", "ms"}
    assert sum(r["verdict"] == "correct" for r in records) == verdicts["correct"]
    dense = json.loads(
        run("eval", str(questions), "--json", "--mode", "dense", "--no-answers", data_dir=data_dir).stdout
    )
    assert dense["mode"] == "dense" and dense["by_kind"]["paraphrase"]["n"] == 43


def test_resync_unchanged_embeds_nothing(synced_sample):
    data_dir, first = synced_sample
    report = json.loads(run("sync", "--json", data_dir=data_dir).stdout)
    assert report["chunks_embedded"] == 0 and report["unchanged"] == first["added"]


def test_sync_of_given_sources_and_errors(tmp_path):
    write(
        tmp_path / "kb/a.md", "# Resetting your password\n\nUse the Forgot password link on the sign-in page."
    )
    write(tmp_path / "kb/bad.pdf", b"%PDF-1.4 broken")
    report = json.loads(run("sync", str(tmp_path / "kb"), "--json", data_dir=tmp_path / "d").stdout)
    assert report["added"] == 1 and report["skipped"][0]["where"] == "bad.pdf"
    missing = run("search", "x", data_dir=tmp_path / "empty", check=False)
    assert missing.returncode == 1 and "helpdesk sync" in missing.stderr
    bad_eval = write(tmp_path / "q.jsonl", '{"id": 1}\n')
    result = run("eval", str(bad_eval), data_dir=tmp_path / "d", check=False)
    assert result.returncode == 1 and "missing field(s) question" in result.stderr


def test_every_command_has_help(tmp_path):
    for command in ([], ["sync"], ["search"], ["eval"]):
        result = run(*command, "--help", data_dir=tmp_path)
        assert "Usage" in result.stdout


def test_ask_prints_one_json_object_with_cited_sources(synced_sample):
    data_dir, _ = synced_sample
    # The JSON shape is the same for every writer; the quoting one keeps this fast and always answers here.
    answer = json.loads(
        run(
            "ask", "How long do refunds take to reach my card?", "--json",
            data_dir=data_dir, HELPDESK_GENERATOR="extractive",
        ).stdout
    )  # fmt: skip
    assert set(answer) == {"answer", "refused", "confidence", "citations", "timings_ms"}
    assert not answer["refused"] and "[1]" in answer["answer"]
    first = answer["citations"][0]
    assert set(first) == {"n", "doc_id", "title", "source", "snippet", "updated_at"}
    assert first["n"] == 1 and first["doc_id"] == "billing/refund-policy"
    assert set(answer["timings_ms"]) >= {"retrieve", "generate", "total"}
    human = run("ask", "Is there an SLA with uptime commitments?", data_dir=data_dir).stdout  # the default
    assert "sources:" in human.lower()  # the sources cited, or the closest ones when it refuses


def test_chat_answers_follow_ups_and_ends_on_exit(synced_sample):
    data_dir, _ = synced_sample
    environment = {
        **os.environ,
        "HELPDESK_DATA_DIR": str(data_dir),
        "HELPDESK_LOG_LEVEL": "WARNING",
        "HELPDESK_TONE_ENABLED": "false",
        "HELPDESK_MODEL_CACHE_DIR": str(TEST_MODEL_CACHE),
    }
    conversation = "How do I reset my password?\nhow long is the link valid?\nexit\nWhat does Growth cost?\n"
    result = subprocess.run(
        [*HELPDESK, "chat"], input=conversation, capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Sources:") == 2
    assert "60 minutes" in result.stdout
