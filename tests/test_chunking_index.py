"""Heading-aware chunking and the hybrid index: heading paths, title entries, fusion, coverage."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from conftest import CountingEmbeddings

from bot.runtime import make_chunker
from bot.settings import Settings
from knowledge.chunking import Chunker
from knowledge.documents import Chunk, SourceDocument
from knowledge.index import KEYWORD_WEIGHT, IndexVersion, announces_what_follows, lead, with_document_vectors

GUIDE = """# Payments guide

Intro about payments.

## Card payments

Cards cost 2.9% per payment.

### Refunding a card payment

Open the payment and click Refund.

## Bank transfers

Transfers are free.
"""


def test_chunks_carry_title_heading_path_and_source():
    doc = SourceDocument(
        "payments/guide", "Payments guide", GUIDE, "https://h.example/guide", datetime(2026, 1, 2, tzinfo=UTC)
    )
    chunks = Chunker(1000, 100).split("src|payments/guide", doc)
    assert chunks[0].kind == "title" and chunks[0].text == "Payments guide"
    by_text = {c.text: c for c in chunks[1:]}
    refund = by_text["Open the payment and click Refund."]
    assert refund.headings == ["Payments guide", "Card payments", "Refunding a card payment"]
    assert refund.source == "https://h.example/guide" and refund.updated_at.startswith("2026-01-02")
    assert refund.embedding_text().startswith("Payments guide > Card payments > Refunding a card payment\n\n")
    assert "Card payments" in refund.keyword_text()
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_long_sections_are_split_by_size_and_plain_text_is_not_split_by_headings():
    long = SourceDocument("long", "Long", "# Long\n\n" + "A sentence about invoices. " * 200, "p")
    assert all(len(c.text) <= 500 for c in Chunker(500, 50).split("k", long))
    text = SourceDocument("t", "T", "# not a heading in plain text\nbody", "p", text_format="text")
    assert Chunker().split("k", text)[1].headings == []


def _version(
    docs: dict[str, str], titles: dict[str, str] | None = None
) -> tuple[IndexVersion, CountingEmbeddings]:
    embeddings = CountingEmbeddings(size=32)
    chunker = Chunker(1000, 100)
    titles = titles or {}
    chunks = [
        c
        for doc_id, text in docs.items()
        for c in chunker.split(
            f"s|{doc_id}", SourceDocument(doc_id, titles.get(doc_id, doc_id.title()), text, doc_id)
        )
    ]
    version = IndexVersion.empty(embeddings, 32, {})
    version.add_chunks(chunks, embeddings.embed_documents([c.embedding_text() for c in chunks]))
    version.build_keyword_index()
    return version, embeddings


def test_one_hit_per_document_with_its_best_passage_and_modes():
    version, embeddings = _version(
        {
            "refunds": "# Refunds\n\nRefunds take five days.\n\n## Partial refunds\n\nPartial refunds are allowed.",
            "taxes": "# Taxes\n\nVAT is added to invoices.",
        }
    )
    query = "partial refunds allowed"
    hits = version.search(embeddings.embed_query(query), query, k=5, mode="bm25")
    assert [h.chunk.doc_id for h in hits] == ["refunds"]
    assert hits[0].chunk.text == "Partial refunds are allowed."
    exact = version.search(embeddings.embed_query("Taxes"), "Taxes", k=2, mode="dense")
    assert exact[0].chunk.doc_id == "taxes" and exact[0].dense > 0.99  # the title entry matches exactly
    assert exact[0].chunk.kind == "passage"  # but the hit shows the document's passage


def test_a_title_question_is_answered_from_the_opening_passage():
    faq = "# Why is join a string method?\n\nJoin belongs to strings because the separator is a string.\n\n"
    faq += "For example:\n\n```\n', '.join(['1', '2'])\n```\n\nwhich gives:\n\n```\n'1, 2'\n```"
    version, embeddings = _version({"join": faq})
    query = "Why is join a string method?"
    hit = version.search(embeddings.embed_query(query), query, k=1, mode="dense")[0]
    assert hit.chunk.text.startswith("Join belongs to strings because the separator is a string.")


def test_runners_up_that_match_nearly_as_well_are_handed_on_with_the_best_passage(monkeypatch):
    import knowledge.index

    plans = "# Plans\n\n## Monthly\n\nThe monthly price is $29.\n\n## Annual\n\nThe annual price is $290."
    plans += "\n\n## Seats\n\nEach seat has its own login.\n\n## Trial\n\nThe trial price is zero."
    version, embeddings = _version({"plans": plans, "taxes": "# Taxes\n\nVAT is added to invoices."})
    query = "price"

    def search():
        return version.search(embeddings.embed_query(query), query, k=1)[0]

    monkeypatch.setattr(knowledge.index, "MORE_PASSAGE_MARGIN", 10.0)
    hit = search()
    assert hit.chunk.doc_id == "plans" and "price" in hit.chunk.text
    assert len(hit.more) == knowledge.index.MORE_PASSAGES == 2
    assert all("price" in more.text and more != hit.chunk for more in hit.more)
    monkeypatch.setattr(knowledge.index, "MORE_PASSAGE_MARGIN", 0.0)
    assert search().more == ()
    assert version.search(embeddings.embed_query("Plans"), "Plans", k=1)[0].more == ()  # a title question


def test_the_document_a_short_see_also_entry_names_follows_it_in_every_mode(monkeypatch):
    import knowledge.index

    docs = {
        "executable": "See Creating a stand-alone binary for the tools that do it.",
        "binary": "Freeze bundles your modules with the interpreter into one program users can run.",
        "long": "Creating a stand-alone binary is covered elsewhere. " + "Other words here. " * 10,
        "billing": "Invoices are sent monthly.",
        "see-billing": "See Billing.",
        **{f"topic{n}": f"Unrelated topic number {n} about invoices and payments." for n in range(8)},
    }
    titles = {
        "executable": "Making an executable",
        "binary": "Creating a stand-alone binary",
        "billing": "Billing",
    }
    query = "Making an executable"

    def ranking(mode: str) -> list[str]:
        version, embeddings = _version(docs, titles)
        return [h.chunk.doc_id for h in version.search(embeddings.embed_query(query), query, k=4, mode=mode)]

    for mode in ("hybrid", "dense", "bm25"):
        assert ranking(mode)[:2] == ["executable", "binary"], mode
    version, _ = _version(docs, titles)
    assert version.pointers == {"s|executable": ["s|binary"]}  # long texts and one-word titles do not point
    monkeypatch.setattr(knowledge.index, "POINTER_WORDS", 0)
    assert ranking("hybrid")[1] != "binary" and "binary" not in ranking("bm25")


@pytest.mark.parametrize(
    ("text", "announces"),
    [
        ("Forgot your password? Here's how to get back into your account.", True),
        ("To export, do the following:", True),
        ("The steps are as follows", True),
        ("Here is what happens when a payment fails. It is retried three times.", False),
        ("Refunds take five days.", False),
    ],
)
def test_a_passage_that_announces_what_follows(text, announces):
    assert announces_what_follows(text) is announces


def test_an_opening_that_announces_the_steps_brings_the_passage_after_it():
    steps = "1. Open the sign-in page.\n2. Click Forgot password."
    docs = {
        "reset": f"Forgot it? Here's how to get back in.\n\n## Steps\n\n{steps}\n\n## Rules\n\nPasswords have 12 characters.",
        "plain": f"Passwords can be reset by anyone.\n\n## Steps\n\n{steps}",
    }
    titles = {"reset": "Resetting your password", "plain": "Changing your password"}
    version, embeddings = _version(docs, titles)
    for title, announced in [("Resetting your password", steps), ("Changing your password", None)]:
        hit = version.search(embeddings.embed_query(title), title, k=1, mode="dense")[0]
        assert hit.chunk.text.startswith(("Forgot it?", "Passwords can"))  # the opening stands for it
        assert (hit.announced.text if hit.announced else None) == announced, title
        assert hit.more == ()


def test_a_few_words_before_a_code_block_stay_with_it():
    doc = SourceDocument("d", "D", "# D\n\nUse this:\n\n```\nx = 1\n```\n\nbut not:\n\n```\ny = 2\n```", "p")
    texts = [c.text for c in Chunker(1000, 100).split("k", doc)[1:]]
    assert texts == ["Use this:\n\n```\nx = 1\n```", "but not:\n\n```\ny = 2\n```"]


def test_a_code_block_cut_between_passages_is_fenced_on_both_sides_and_read_back_whole():
    from langchain_core.documents import Document

    from bot.retriever import whole_text

    code = "\n".join(f"result_{n} = compute({n})" for n in range(40))
    text = f"# D\n\nRun this:\n```python\n{code}\n```\nThat is all."
    passages = [c.text for c in Chunker(300, 80).split("k", SourceDocument("d", "D", text, "p"))[1:]]
    assert len(passages) > 2
    for passage in passages:
        assert passage.count("```") % 2 == 0, passage  # every passage is whole Markdown
    assert passages[1].startswith(f"```python\n{code[:20]}") and passages[-2].endswith(
        "result_39 = compute(39)\n```"
    )
    document = Document(passages[0], metadata={"whole": passages})
    assert whole_text(document) == f"Run this:\n\n```python\n{code}\n```\n\nThat is all."


def test_keyword_coverage_and_confidence():
    version, embeddings = _version(
        {"refunds": "# Refunds\n\nRefunds take five days.", "taxes": "# Taxes\n\nVAT."}
    )
    assert version.keyword_coverage("refunds days", ["s|refunds"]) == 1.0
    assert version.keyword_coverage("refunds quickbooks", ["s|refunds"]) < 0.5
    assert version.keyword_coverage("refunds", ["s|taxes"]) == 0.0
    query = "refunds"
    retrieval = version.retrieve(embeddings.embed_query(query), query, k=1)
    assert len(retrieval.hits) == 1 and 0.0 <= retrieval.confidence <= 1.0


def test_a_question_that_singles_out_a_document_is_more_confident_than_one_that_matches_all_alike():
    topics = ["refunds", "invoices", "taxes", "payroll", "exports", "webhooks", "mobile", "security"]
    chunker = Chunker(1000, 100)
    chunks = [
        c
        for t in topics
        for c in chunker.split(f"s|{t}", SourceDocument(t, t.title(), f"# {t}\n\nAll about {t}.", t))
    ]
    # Every entry gets its own axis: each passage is equally far from the others.
    vectors = np.eye(len(chunks), 32, dtype=np.float32)
    version = IndexVersion.empty(CountingEmbeddings(size=32), 32, {})
    version.add_chunks(chunks, vectors.tolist())
    version.build_keyword_index()
    passage_axes = vectors[[i for i, c in enumerate(chunks) if c.kind == "passage"]]
    centroid = passage_axes.mean(axis=0)
    centroid /= np.linalg.norm(centroid)
    # As close to one document as the centroid is to each, the rest of it pointing where nothing is.
    similarity = float(centroid @ passage_axes[0])
    singled_out = (
        similarity * passage_axes[0] + np.sqrt(1 - similarity**2) * np.eye(1, 32, 31, dtype=np.float32)[0]
    )
    near_one = version.retrieve(singled_out.tolist(), "", k=10)
    near_all = version.retrieve(centroid.tolist(), "", k=10)
    assert near_one.hits[0].chunk.doc_key == "s|refunds"
    assert near_one.hits[0].dense == pytest.approx(near_all.hits[0].dense, abs=1e-3)
    assert lead(near_one.hits) > 0.3 and abs(lead(near_all.hits)) < 1e-3
    assert near_one.confidence > near_all.confidence + 0.2
    assert 0.0 <= near_all.confidence <= near_one.confidence <= 1.0


def test_removing_documents_keeps_the_rest_searchable():
    version, embeddings = _version({"a": "# A\n\napples", "b": "# B\n\nbananas"})
    version.remove_documents({"s|a"})
    version.build_keyword_index()
    assert {c.doc_id for c in version.chunks} == {"b"}
    assert version.store.index.ntotal == len(version)
    hits = version.search(embeddings.embed_query("bananas"), "bananas", k=3, mode="hybrid")
    assert [h.chunk.doc_id for h in hits] == ["b"]


def test_save_and_load_round_trip(tmp_path):
    version, embeddings = _version({"a": "# A\n\napples", "b": "# B\n\nbananas"})
    version.manifest = {"format": 1}
    version.save(tmp_path / "v")
    loaded = IndexVersion.load(tmp_path / "v", embeddings)
    assert [c.chunk_id for c in loaded.chunks] == [c.chunk_id for c in version.chunks]
    query = "bananas"
    assert loaded.search(embeddings.embed_query(query), query, k=1, mode="bm25")[0].chunk.doc_id == "b"


def test_token_sized_passages_fit_the_embedding_model_whole():
    settings = Settings(chunk_tokens=200, chunk_overlap_tokens=30)
    chunker = make_chunker(settings)
    sections = "".join(
        f"## Part {n}\n\n" + f"Invoices in part {n} are sent weekly by email. " * 60 for n in range(3)
    )
    doc = SourceDocument("guide", "Billing guide", "# Billing guide\n\n" + sections, "p")
    chunks = chunker.split("k", doc)
    counts = [len(chunker.tokenizer.tokenize(c.embedding_text())) for c in chunks]
    assert len(chunks) > 6 and max(counts) <= 200
    assert chunker.config["splitter"] != Chunker().config["splitter"]
    assert make_chunker(Settings(chunk_tokens=0)).config == Chunker(1000, 150).config


def test_a_document_that_fits_the_model_gets_one_whole_document_entry():
    chunker = make_chunker(Settings())
    short = chunker.split("k", SourceDocument("guide", "Payments guide", GUIDE, "p"))
    whole = [c for c in short if c.kind == "document"]
    assert len(whole) == 1 and whole[0].chunk_id == "k#document"
    assert "Cards cost 2.9% per payment." in whole[0].text and "## Card payments" not in whole[0].text
    assert whole[0].embedding_text().startswith("Payments guide\n\n") and whole[0].keyword_text() == ""
    long = SourceDocument("long", "Long", "# Long\n\n" + "A sentence about invoices. " * 200, "p")
    assert all(c.kind != "document" for c in chunker.split("k", long))
    assert all(c.kind != "document" for c in Chunker().split("k", long))


def _chunk(doc: str, number: int, kind: str = "passage") -> Chunk:
    return Chunk(f"s|{doc}#{number}", f"s|{doc}", doc, doc.title(), f"{doc} text {number}", doc, kind=kind)


def test_a_long_document_is_represented_by_the_mean_of_its_passages():
    chunks = [
        _chunk("long", 0, "title"),
        _chunk("long", 1),
        _chunk("long", 2),
        _chunk("short", 3, "document"),
    ]
    vectors = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    out_chunks, out_vectors = with_document_vectors(chunks, vectors)
    assert out_chunks[:4] == chunks and len(out_chunks) == 5
    assert out_chunks[4].chunk_id == "s|long#document" and out_chunks[4].derived and not chunks[3].derived
    assert np.allclose(out_vectors[4], [0.0, 2**-0.5, 2**-0.5])


def test_the_document_about_a_question_outranks_a_neighbour_mentioning_it_once():
    # "focused" is about the question throughout; "neighbour" has one passage that matches slightly better.
    query = np.array([1.0, 0.0, 0.0], dtype=np.float32)

    def towards(cosine: float, side: int) -> list[float]:
        vector = [cosine, 0.0, 0.0]
        vector[side] = (1 - cosine**2) ** 0.5
        return vector

    chunks = [_chunk("focused", 1), _chunk("focused", 2, "document"), _chunk("neighbour", 3)]
    vectors = [towards(0.80, 1), towards(0.78, 1), towards(0.82, 2)]
    chunks, vectors = with_document_vectors([*chunks, _chunk("neighbour", 4)], [*vectors, towards(0.10, 1)])
    version = IndexVersion.empty(CountingEmbeddings(size=3), 3, {})
    version.add_chunks(chunks, vectors)
    version.build_keyword_index()
    assert set(version.document_rows) == {"s|focused", "s|neighbour"}
    dense_only = max(
        version.rows_by_doc, key=lambda k: max(vectors[r] @ query for r in version.rows_by_doc[k])
    )
    assert dense_only == "s|neighbour"
    hits = version.search(query.tolist(), "unrelated words", k=2, mode="dense")
    assert [h.chunk.doc_id for h in hits] == ["focused", "neighbour"]
    assert all(h.chunk.kind == "passage" for h in hits)
    assert abs(hits[0].dense - 0.8) < 1e-3
    assert abs(hits[0].score - (0.80 + 0.78) / 2) < 1e-3 and hits[1].document is not None
    version.remove_documents({"s|neighbour"})
    assert set(version.document_rows) == {"s|focused"}


def test_the_default_keyword_weight_is_the_one_retrieval_uses():
    assert Settings().keyword_weight == KEYWORD_WEIGHT


def test_a_short_document_is_handed_on_whole_in_reading_order(monkeypatch):
    import knowledge.index

    sections = [
        "Intro words here.",
        "Steps come now.",
        "Rules apply after this long sentence of words.",
        "Notes.",
    ]
    doc = "\n\n".join(f"## Part {n}\n\n{text}" for n, text in enumerate(sections))
    version, embeddings = _version({"guide": doc, "taxes": "# Taxes\n\nVAT is added to invoices."})
    query = "steps"

    def whole():
        hit = version.search(embeddings.embed_query(query), query, k=1, mode="bm25")[0]
        assert hit.chunk.text == "Steps come now."
        return [chunk.text for chunk in hit.whole]

    assert whole() == sections
    monkeypatch.setattr(knowledge.index, "WHOLE_DOCUMENT_WORDS", 14)
    assert whole() == []  # a longer document is handed on as its best passages only
