"""The journal: one vote per person per answer, old journals upgraded, and answers given when it cannot be written."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from conftest import answer_settings

from bot.journal import _MIGRATIONS, JournalError, SqliteJournal
from bot.models import Answer, Question
from bot.runtime import build_bot

# The journal as the first release wrote it: every click was a new row.
FIRST_RELEASE_SCHEMA = """
CREATE TABLE answers (
    id TEXT PRIMARY KEY, asked_at REAL NOT NULL, asker TEXT, channel TEXT, question TEXT NOT NULL,
    standalone_query TEXT, answer TEXT NOT NULL, refused INTEGER NOT NULL, confidence REAL NOT NULL,
    generator TEXT, citations TEXT NOT NULL, total_ms REAL
);
CREATE TABLE feedback (
    answer_id TEXT NOT NULL REFERENCES answers(id), vote INTEGER NOT NULL, comment TEXT, voter TEXT,
    voted_at REAL NOT NULL
);
CREATE INDEX feedback_answer ON feedback(answer_id);
"""


def _break(path, how: str) -> None:
    """Make the journal file unusable in a way file permissions (and root) cannot get around."""
    path.unlink(missing_ok=True)
    if how == "a directory in its place":
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"this is not an SQLite database, it was damaged " * 200)


@pytest.mark.parametrize("how", ["a directory in its place", "a damaged file"])
async def test_questions_are_answered_when_the_journal_cannot_be_written(helpdesk_bot, tmp_path, how, caplog):
    kb = helpdesk_bot.chain.retriever.knowledge_base
    _break(answer_settings(tmp_path).data_dir / "journal.sqlite3", how)
    bot = build_bot(answer_settings(tmp_path), kb)  # as `helpdesk ask` builds it

    answer = await bot.answer(Question("How do I start a refund?"))

    assert not answer.refused and answer.citations[0].doc_id == "billing/refunds"
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"Answer {answer.id} is given but not recorded" in error.getMessage()
    assert "journal.sqlite3" in error.getMessage() and "writable" in error.getMessage()
    assert error.exc_info is None  # one clear line, no SQLite traceback

    with pytest.raises(JournalError, match="HELPDESK_DATA_DIR"):
        await bot.feedback(answer.id, "up", voter="U1")
    assert "A vote on answer" in caplog.text


async def test_a_second_vote_by_the_same_person_replaces_the_first(helpdesk_bot):
    answer = await helpdesk_bot.answer(Question("How do I start a refund?"))
    await helpdesk_bot.feedback(answer.id, "up", voter="U1")
    await helpdesk_bot.feedback(answer.id, "up", voter="U1")
    await helpdesk_bot.feedback(answer.id, "down", voter="U2")
    await helpdesk_bot.feedback(answer.id, "down", "changed my mind", voter="U1")
    await helpdesk_bot.feedback(answer.id, "up")  # anonymous votes (no voter known) are all kept
    await helpdesk_bot.feedback(answer.id, "up")
    votes = await helpdesk_bot.journal.feedback_for(answer.id)
    assert sorted(votes, key=str) == sorted(
        [(-1, None, "U2"), (-1, "changed my mind", "U1"), (1, None, None), (1, None, None)], key=str
    )


async def test_a_journal_of_the_first_release_keeps_each_persons_latest_vote(tmp_path):
    path = tmp_path / "journal.sqlite3"
    with sqlite3.connect(path) as old:
        old.executescript(FIRST_RELEASE_SCHEMA)
        old.execute(
            "INSERT INTO answers VALUES ('a1', 1, 'U0', 'C1', 'q', 'q', 'a', 0, 0.9, 'local', '[]', 5)"
        )
        old.executemany(
            "INSERT INTO feedback VALUES ('a1', ?, ?, ?, ?)",
            [
                (1, None, "U1", 10.0),
                (1, None, "U1", 11.0),
                (-1, "wrong", "U1", 12.0),
                (1, None, "U2", 13.0),
                (1, None, None, 14.0),
                (-1, None, None, 15.0),
            ],
        )
    old.close()

    journal = SqliteJournal(path)
    assert (await journal.feedback_for("a1")) == [
        (-1, "wrong", "U1"),
        (1, None, "U2"),
        (1, None, None),
        (-1, None, None),
    ]
    await journal.record_feedback("a1", 1, None, "U2")
    assert len(await journal.feedback_for("a1")) == 4
    assert (await SqliteJournal(path).answers())[0][
        "id"
    ] == "a1"  # upgraded once; opening it again changes nothing
    with sqlite3.connect(path) as upgraded:
        assert upgraded.execute("PRAGMA user_version").fetchone() == (len(_MIGRATIONS),)
    upgraded.close()


async def test_a_new_journal_is_created_on_first_use(tmp_path):
    journal = SqliteJournal(tmp_path / "new" / "journal.sqlite3")
    assert not journal.path.exists()
    answer = Answer("Refunds take 14 days [1].", [], refused=False, confidence=0.9)
    await journal.record_answer(Question("refunds?"), answer)
    assert [row["id"] for row in (await journal.answers())] == [answer.id]
