"""Folder and file sources: every format, titles, ids, and the reasons bad files are skipped."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLE_KB, write

from knowledge.documents import Skipped, SourceDocument
from knowledge.sources import FileSource, SourceOptions, SourceUnavailable, open_source


async def _load_all(source) -> tuple[dict[str, SourceDocument], dict[str, str]]:
    documents, skipped = {}, {}
    async for item in source.scan():
        if isinstance(item, Skipped):
            skipped[item.where] = item.reason
            continue
        try:
            results = await item.load()
        except Exception as error:
            skipped[item.key] = str(error)
            continue
        for result in results:
            if isinstance(result, Skipped):
                skipped[result.where] = result.reason
            else:
                documents[result.doc_id] = result
    return documents, skipped


async def test_markdown_title_front_matter_and_ids(tmp_path):
    write(tmp_path / "kb/billing/refunds.md", "# Refund policy\n\nWe refund within 14 days.\n")
    write(tmp_path / "kb/notes.txt", "Plain text notes\nsecond line\n")
    write(
        tmp_path / "kb/x/linked.md",
        "---\ntitle: Linked article\nurl: https://help.example/linked\n---\nBody text.\n",
    )
    docs, skipped = await _load_all(FileSource(tmp_path / "kb", SourceOptions()))
    assert skipped == {}
    assert docs["billing/refunds"].title == "Refund policy"
    assert docs["billing/refunds"].source.endswith("billing/refunds.md")
    assert docs["notes"].title == "Notes" and docs["notes"].text_format == "text"
    assert docs["x/linked"].title == "Linked article"
    assert docs["x/linked"].source == "https://help.example/linked"
    assert docs["x/linked"].text.startswith("Body text")
    assert docs["billing/refunds"].updated_at is not None


async def test_html_keeps_the_article_and_drops_navigation(tmp_path):
    page = """<html><head><title>Resetting your password | Help</title></head><body>
    <nav><a href="/">Home</a> <a href="/pricing">Pricing menu entry</a></nav>
    <main><article><h1>Resetting your password</h1><p>Click Forgot password on the sign-in page and
    follow the link we email you. The link expires after 60 minutes.</p><h2>No email?</h2>
    <p>Check your spam folder, then contact support if it still has not arrived.</p></article></main>
    <footer>Copyright 2026 Example footer text</footer></body></html>"""
    write(tmp_path / "kb/reset.html", page)
    docs, _ = await _load_all(FileSource(tmp_path / "kb", SourceOptions()))
    doc = docs["reset"]
    assert "expires after 60 minutes" in doc.text
    assert "## No email?" in doc.text
    assert "footer text" not in doc.text and "Pricing menu entry" not in doc.text
    assert doc.title.startswith("Resetting your password")


async def test_faq_exports_give_one_document_per_row(tmp_path):
    write(
        tmp_path / "kb/faq.csv",
        'question,answer,url\n"How do I pay?","By card, see billing.",https://h.example/pay\n'
        '"Empty answer",,\n"Is there an app?","Yes, for iOS.",\n',
    )
    write(
        tmp_path / "kb/more.json",
        json.dumps([{"question": "Q1?", "answer": "A1.", "url": "https://h.example/q1"}]),
    )
    docs, skipped = await _load_all(FileSource(tmp_path / "kb", SourceOptions()))
    assert docs["faq#1"].title == "How do I pay?" and docs["faq#1"].source == "https://h.example/pay"
    assert docs["faq#3"].source.endswith("faq.csv#3")
    assert "faq#2" in skipped and "without a question or an answer" in skipped["faq#2"]
    assert docs["more#1"].text == "A1."


async def test_pdf_text_is_extracted(tmp_path):
    docs, skipped = await _load_all(FileSource(SAMPLE_KB / "policies", SourceOptions()))
    assert not skipped
    (doc,) = docs.values()
    assert "99.9%" in doc.text and doc.text_format == "text"


async def test_bad_inputs_are_skipped_with_reasons(tmp_path):
    kb = tmp_path / "kb"
    write(kb / "good.md", "# Good\n\nStill indexed.\n")
    write(kb / "broken.pdf", b"%PDF-1.4\n this is not really a pdf \x00\x01")
    write(kb / "binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(kb / "latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"))
    write(kb / "empty.md", "")
    write(kb / "blank.md", "   \n\n")
    write(kb / "huge.md", "x" * 3000)
    write(kb / "image.png", b"\x89PNG")
    write(kb / "bad.json", "{not json")
    docs, skipped = await _load_all(FileSource(kb, SourceOptions(max_bytes=2000)))
    assert list(docs) == ["good"]
    assert "PDF" in skipped["broken.pdf"]
    assert "binary" in skipped["binary.md"]
    assert "UTF-8" in skipped["latin1.txt"]
    assert skipped["empty.md"] == "empty file"
    assert "no text" in skipped["blank.md"]
    assert "limit" in skipped["huge.md"] and "HELPDESK_MAX_FILE_MB" in skipped["huge.md"]
    assert "unsupported file type" in skipped["image.png"]
    assert "invalid JSON" in skipped["bad.json"]


async def test_single_file_source_and_missing_path(tmp_path):
    write(tmp_path / "one.md", "# One\n\ntext")
    docs, _ = await _load_all(open_source(str(tmp_path / "one.md"), SourceOptions()))
    assert list(docs) == ["one"]
    with pytest.raises(SourceUnavailable, match="does not exist"):
        await _load_all(open_source(str(tmp_path / "missing"), SourceOptions()))


async def test_sample_knowledge_base_loads_completely():
    docs, skipped = await _load_all(FileSource(SAMPLE_KB, SourceOptions()))
    assert skipped == {}
    assert len(docs) >= 30
    assert {
        "billing/refund-policy",
        "web/sso-setup",
        "faq/faq-export#1",
        "policies/service-level-agreement",
    } <= set(docs)


async def test_links_out_of_the_folder_broken_links_and_loops_are_skipped_with_reasons(tmp_path):
    kb = tmp_path / "kb"
    write(kb / "inside.md", "# Inside\n\nIndexed as usual.\n")
    write(tmp_path / "elsewhere/secret.md", "# Secret\n\nroot:x:0:0:the secret outside\n")
    (kb / "passwd.md").symlink_to("/etc/passwd")
    (kb / "secret.md").symlink_to(tmp_path / "elsewhere/secret.md")
    (kb / "relative.md").symlink_to("../elsewhere/secret.md")
    (kb / "folder").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (kb / "alias.md").symlink_to("inside.md")  # a link inside the folder is read
    (kb / "dangling.md").symlink_to(kb / "missing.md")
    (kb / "loop.md").symlink_to("loop.md")
    docs, skipped = await _load_all(FileSource(kb, SourceOptions()))
    assert sorted(docs) == ["alias", "inside"]
    for name in ("passwd.md", "secret.md", "relative.md", "folder"):
        assert skipped[name].startswith("links outside the source folder"), skipped
    assert skipped["dangling.md"].startswith("broken link")
    assert skipped["loop.md"].startswith("link loop")


async def test_a_link_out_of_the_folder_never_reaches_the_index(tmp_path, make_kb):
    kb_dir = tmp_path / "kb"
    write(kb_dir / "inside.md", "# Inside\n\nSomething about invoices.\n")
    (kb_dir / "passwd.md").symlink_to("/etc/passwd")
    kb = make_kb()
    report = await kb.sync([FileSource(kb_dir, SourceOptions())])
    assert [key.rsplit("|", 1)[1] for key in report.added] == ["inside"]
    assert {s.where: s.reason.split(" (")[0] for s in report.skipped} == {
        "passwd.md": "links outside the source folder"
    }
    version = await kb.current()
    assert all("root" not in chunk.text for chunk in version.chunks)


async def test_megabyte_titles_and_headings_are_cut(tmp_path, make_kb):
    giant = "word " * 600_000  # a 3 MB line
    write(
        tmp_path / "kb/giant.md",
        f"# {giant}\n\nThe body.\n\n## {giant}\n\nMore text under a giant heading.\n",
    )
    write(
        tmp_path / "kb/page.html",
        f"<html><head><title>{giant}</title></head><body><p>Text.</p></body></html>",
    )
    docs, _ = await _load_all(FileSource(tmp_path / "kb", SourceOptions()))
    assert len(docs["giant"].title) == 200 and docs["giant"].title.endswith("…")
    assert len(docs["page"].title) <= 200
    kb = make_kb()
    await kb.sync([FileSource(tmp_path / "kb", SourceOptions())])
    chunks = (await kb.current()).chunks
    assert max(len(c.title) for c in chunks) <= 200
    assert max(len(h) for c in chunks for h in c.headings) <= 200


async def test_the_size_limit_message_shows_one_byte_over(tmp_path):
    write(tmp_path / "kb/over.md", "x" * 2049)
    write(tmp_path / "kb/at.md", "# At the limit\n\n" + "y" * (2048 - 16))
    docs, skipped = await _load_all(FileSource(tmp_path / "kb", SourceOptions(max_bytes=2048)))
    assert list(docs) == ["at"]
    assert skipped["over.md"] == (
        "file is 2.0 KB (2,049 bytes), over the 2.0 KB limit (2,048 bytes; HELPDESK_MAX_FILE_MB)"
    )
