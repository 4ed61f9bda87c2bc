"""The answer writer alone: how often its answer holds every key fact when every reworded question is answered.

No refusal rule and no voice: each reworded question with key facts is retrieved for and written, and the
written draft is checked against its key facts. This shows what a change to the writer (its prompt, the
excerpts it reads, what it quotes) does before the decision to answer is fitted again.

    HELPDESK_DATA_DIR=D python bench/writer_eval.py ../shared/eval/pyfaq/questions.jsonl [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from measure import latency_stats

from bot.answer.scoring import contains_key_facts
from bot.runtime import build_bot
from bot.settings import Settings


async def measure(questions_file: Path, limit: int | None) -> dict:
    """Write an answer to each reworded question with key facts; count those holding every key fact."""
    questions = [json.loads(line) for line in questions_file.read_text().splitlines() if line.strip()]
    questions = [q for q in questions if q["kind"] == "paraphrase" and q.get("key_facts")][:limit]
    chain = build_bot(Settings()).chain
    await chain.writer.load()
    held = right_article = 0
    seconds = []
    for question in questions:
        started = time.perf_counter()
        documents = await chain.retriever.ainvoke(question["question"])
        draft = await chain.writer.acompose(question["question"], question["question"], documents)
        seconds.append(time.perf_counter() - started)
        held += not draft.not_in_context and contains_key_facts(draft.text, question["key_facts"])
        right_article += bool(documents) and documents[0].metadata.get("doc_id") in question["gold_doc_ids"]
    return {
        "questions": len(questions),
        "key_facts_held": held,
        "best_article_right": right_article,
        "retrieve_and_write": latency_stats(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path, help="Questions file (JSON lines with key_facts).")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N reworded questions.")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.questions, args.limit)), indent=2))


if __name__ == "__main__":
    main()
