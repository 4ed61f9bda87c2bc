"""A third evaluation knowledge base: the Debian FAQ (package debian-faq), one Markdown document per FAQ section."""

from __future__ import annotations

import argparse
import re
import unicodedata
import warnings
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, Tag, XMLParsedAsHTMLWarning
from pydocs import DEFAULT_CACHE, unpack_package

PACKAGE = "debian-faq"
FAQ_DIR = Path("usr/share/doc/debian/FAQ")
DATA = Path(__file__).resolve().parent / "data" / "debfaq"
INLINE_CODE = {"code", "command", "filename", "literal", "systemitem", "citerefentry", "replaceable"}
BLOCKS = {"p", "div", "ul", "ol", "dl", "pre", "table", "blockquote"}
MAX_SLUG = 100

warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)


def ensure_faq(cache: Path) -> tuple[Path, str]:
    """The extracted FAQ HTML folder and the .deb's file name; downloads and unpacks it on first use."""
    root, deb = unpack_package(cache, PACKAGE, FAQ_DIR / "index.en.html")
    return root / FAQ_DIR, deb


def slugify(text: str) -> str:
    """Lowercase ASCII words joined by hyphens, cut at a word boundary after MAX_SLUG characters."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text.replace("'", "")).strip("-")
    if len(slug) > MAX_SLUG:
        slug = slug[:MAX_SLUG].rsplit("-", 1)[0]
    return slug


def strip_number(title: str) -> str:
    """A heading without its section number ("7.2. What is ..." -> "What is ...")."""
    return re.sub(r"^(Chapter\s+)?[0-9.]+\s+", "", " ".join(title.split()))


class Converter:
    """DocBook-generated XHTML to Markdown; footnotes referenced in a section are appended to it."""

    def __init__(self, footnotes: dict[str, Tag]):
        self.footnotes = footnotes
        self.used: list[str] = []

    def inline(self, node, code: bool = False, marks: frozenset[str] = frozenset()) -> str:
        if isinstance(node, NavigableString):
            return re.sub(r"\s+", " ", str(node))
        if not isinstance(node, Tag):
            return ""
        classes = set(node.get("class") or [])
        if node.name == "br":
            return "\n"
        if node.name in ("a", "sup") and "footnote" in classes:
            target = node.get("href", "").lstrip("#") if node.name == "a" else ""
            if target and target in self.footnotes:
                if target not in self.used:
                    self.used.append(target)
                return f"[^{self.used.index(target) + 1}]"
            return "".join(self.inline(child, code, marks) for child in node.children)
        mark = (
            "*"
            if node.name == "em" or "emphasis" in classes
            else "**"
            if node.name in ("strong", "b") or "strong" in classes
            else ""
        )
        inner = marks | {mark} if mark else marks
        text = "".join(self.inline(child, code or self._is_code(node), inner) for child in node.children)
        if not code and self._is_code(node):
            text = text.strip()
            return f"`{text}`" if text else ""
        if code:
            return text
        if node.name == "a" and "ulink" in classes and node.get("href"):
            label = text.strip()
            return f"[{label}]({node['href']})" if label and label != node["href"] else f"<{node['href']}>"
        return _wrap(text, mark) if mark and mark not in marks else text

    @staticmethod
    def _is_code(node: Tag) -> bool:
        return node.name == "code" or bool(INLINE_CODE & set(node.get("class") or []))

    def blocks(self, node: Tag) -> list[str]:
        """The Markdown blocks of a container's children (paragraph runs of inline content are joined)."""
        out, run = [], []

        def flush() -> None:
            text = _tidy("".join(run))
            if text:
                out.append(text)
            run.clear()

        for child in node.children:
            if isinstance(child, Tag) and (child.name in BLOCKS or child.name in ("dt", "dd", "li", "hr")):
                flush()
                out.extend(self.block(child))
            else:
                run.append(self.inline(child))
        flush()
        return out

    def block(self, node: Tag) -> list[str]:
        classes = set(node.get("class") or [])
        if node.name == "hr" or classes & {"titlepage", "toc", "footnotes", "section"}:
            return []
        if node.name == "pre":
            return ["```\n" + node.get_text().strip("\n") + "\n```"]
        if node.name == "p":
            text = _tidy(self.inline(node))
            return [text] if text else []
        if node.name in ("ul", "ol"):
            items = []
            for number, li in enumerate(node.find_all("li", recursive=False), 1):
                marker = f"{number}. " if node.name == "ol" else "- "
                body = "\n\n".join(self.blocks(li))
                items.append(
                    marker
                    + body.replace("\n", "\n" + " " * len(marker)).replace(
                        "\n" + " " * len(marker) + "\n", "\n\n"
                    )
                )
            return ["\n".join(items)] if items else []
        if node.name == "dl":
            out = []
            for child in node.find_all(["dt", "dd"], recursive=False):
                if child.name == "dt":
                    term = _tidy(self.inline(child, marks=frozenset({"*", "**"})))
                    if term:
                        out.append(f"**{term}**")
                else:
                    out.extend(self.blocks(child))
            return out
        return self.blocks(node)

    def render(self, section: Tag) -> str:
        """The section's own text (its sub-sections left out) followed by the footnotes it cites."""
        parts = self.blocks(section)
        notes = []
        for number, key in enumerate(self.used, 1):
            note = self.footnotes[key]
            for marker in note.select("a.para"):
                marker.decompose()
            notes.append(f"[^{number}]: " + " ".join(self.blocks(note)).strip())
        return "\n\n".join(parts + notes)


def _wrap(text: str, mark: str) -> str:
    stripped = text.strip()
    if not stripped:
        return text
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    return f"{lead}{mark}{stripped}{mark}{trail}"


def _tidy(text: str) -> str:
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line).strip()


def chapters(faq: Path) -> list[Path]:
    """The chapter pages in the order of the FAQ's table of contents."""
    index = BeautifulSoup((faq / "index.en.html").read_text(encoding="utf-8"), "lxml")
    pages = [a["href"].split("#")[0] for a in index.select("dl.toc span.chapter > a")]
    return [faq / page for page in dict.fromkeys(pages)]


def documents(faq: Path) -> list[tuple[str, str, str]]:
    """(doc id, title, Markdown body) of every chapter or section that has text of its own, in FAQ order."""
    docs, seen = [], set()
    for page in chapters(faq):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "lxml")
        chapter = slugify(page.name.removesuffix(".en.html"))
        footnotes = {note["id"]: note for note in soup.select("div.footnote[id]")}
        top = soup.select_one("div.chapter")
        for section in [top, *top.select("div.section")]:
            heading = section.find("div", class_="titlepage").find(re.compile(r"^h[1-6]$"))
            title = strip_number(heading.get_text())
            body = Converter(footnotes).render(section)
            if not body:
                continue
            doc_id = f"{chapter}.{slugify(title)}"
            base, n = doc_id, 2
            while doc_id in seen:
                doc_id, n = f"{base}-{n}", n + 1
            seen.add(doc_id)
            docs.append((doc_id, title, body))
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "target", type=Path, help="folder to write the documents into (then `helpdesk sync` it)"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where debian-faq is unpacked")
    args = parser.parse_args()
    faq, _ = ensure_faq(args.cache)
    args.target.mkdir(parents=True, exist_ok=True)
    docs = documents(faq)
    for doc_id, title, body in docs:
        (args.target / f"{doc_id}.md").write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
    print(f"{len(docs)} documents in {args.target}; questions: {DATA / 'questions.jsonl'}")


if __name__ == "__main__":
    main()
