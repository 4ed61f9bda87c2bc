"""The Python 3.11 HTML documentation as a benchmark corpus, fetched with apt-get download and dpkg-deb."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = "python3.11-doc"
HTML_DIR = Path("usr/share/doc/python3.11/html")
SECTIONS = ("library", "reference", "tutorial", "howto", "faq", "using", "extending", "c-api")
DEFAULT_CACHE = Path("~/.cache/helpdesk-bench")


def _download(cache: Path, package: str) -> Path:
    """The package's .deb in the cache folder, downloaded (without installing) if missing."""
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if debs:
        return debs[-1]
    command = ["apt-get", "download", package]
    if subprocess.run(command, cwd=cache, check=False, stdout=sys.stderr).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True, stdout=sys.stderr)
        subprocess.run(command, cwd=cache, check=True, stdout=sys.stderr)
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        msg = f"apt-get download {package} produced no .deb in {cache}"
        raise RuntimeError(msg)
    return debs[-1]


def unpack_package(cache: Path, package: str, unpacked: Path) -> tuple[Path, str]:
    """The folder the Debian package was unpacked into and its .deb's file name; downloads and unpacks it
    (without installing) unless the path `unpacked`, relative to that folder, is already there."""
    cache = cache.expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    deb = _download(cache, package)
    if not (cache / unpacked).exists():
        subprocess.run(["dpkg-deb", "-x", str(deb), str(cache)], check=True, stdout=sys.stderr)
    return cache, deb.name


def ensure_html(cache: Path) -> tuple[Path, str]:
    """The extracted HTML folder and the .deb's file name; downloads and unpacks it on first use."""
    root, deb = unpack_package(cache, PACKAGE, HTML_DIR / "library")
    return root / HTML_DIR, deb


def select_pages(html: Path, max_files: int) -> list[Path]:
    """A deterministic, evenly spread subset of the pages of SECTIONS (each section sorted, in order)."""
    pages = [page for section in SECTIONS for page in sorted((html / section).rglob("*.html"))]
    if max_files >= len(pages):
        return pages
    return [pages[i * len(pages) // max_files] for i in range(max_files)]


def copy_pages(pages: list[Path], html: Path, corpus: Path) -> None:
    """Copy pages into a corpus folder, keeping their paths relative to the HTML root (the doc ids)."""
    for page in pages:
        target = corpus / page.relative_to(html)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, target)
