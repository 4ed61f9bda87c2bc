"""Coverage gaps: the questions the bot refused or got 👎 on, grouped by meaning over their embeddings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings
from scipy.cluster.hierarchy import fcluster, linkage

# Average-linkage cosine distance below which questions are one gap (mean cosine similarity above 0.4).
# Chosen with the packaged MiniLM on 14 support questions: 5 ways to ask about paying in crypto, 3 about
# QuickBooks, 2 about closing an account and 4 unrelated ones. From 0.5 to 0.6 every paraphrase group
# holds together (one loosely worded crypto question aside) and no unrelated questions join; at 0.4 the
# groups break apart.
GAP_DISTANCE = 0.6
EXAMPLES_PER_GAP = 3


@dataclass
class Gap:
    """Questions asked in different words about one thing the knowledge base does not cover well."""

    questions: list[dict]
    examples: list[str]
    # The question closest to the gap's centre, to search the knowledge base with.
    central_question: str


async def group_by_meaning(rows: list[dict], embeddings: Embeddings) -> list[Gap]:
    """Group journal rows by what their questions mean, largest group first.

    The questions are embedded off the event loop with the knowledge base's own embedding model.
    """
    if not rows:
        return []
    texts = [row["question"] for row in rows]
    vectors = np.asarray(await asyncio.to_thread(embeddings.embed_documents, texts), dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    if len(rows) == 1:
        labels = np.ones(1, dtype=int)
    else:
        tree = linkage(vectors, method="average", metric="cosine")
        labels = fcluster(tree, t=GAP_DISTANCE, criterion="distance")
    gaps = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        centre = vectors[members].mean(axis=0)
        by_closeness = members[np.argsort(-(vectors[members] @ centre), kind="stable")]
        examples: list[str] = []
        for index in by_closeness:
            if texts[index] not in examples:
                examples.append(texts[index])
        gaps.append(
            Gap(
                questions=[rows[i] for i in members],
                examples=examples[:EXAMPLES_PER_GAP],
                central_question=texts[by_closeness[0]],
            )
        )
    gaps.sort(key=lambda gap: (-len(gap.questions), -max(q["asked_at"] for q in gap.questions)))
    return gaps
