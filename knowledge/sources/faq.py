"""Helpdesk FAQ exports (CSV or JSON rows of question, answer and url): one document per row."""

from __future__ import annotations

import csv
import io
import json

from knowledge.documents import Skipped, SourceDocument
from knowledge.sources.base import LoadError

_QUESTION = ("question", "q", "title", "name")
_ANSWER = ("answer", "a", "body", "content", "text")
_URL = ("url", "link", "source", "href")


def _pick(row: dict, names: tuple[str, ...]) -> str:
    lowered = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    for name in names:
        value = lowered.get(name)
        if value not in (None, ""):
            return str(value).strip()
    return ""


def _rows_from_json(text: str) -> list[dict]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        msg = f"invalid JSON at line {error.lineno}: {error.msg}"
        raise LoadError(msg) from None
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), None)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        msg = "a FAQ export in JSON must be a list of objects with 'question' and 'answer'"
        raise LoadError(msg)
    return data


def _rows_from_csv(text: str) -> list[dict]:
    try:
        return list(csv.DictReader(io.StringIO(text)))
    except csv.Error as error:
        msg = f"unreadable CSV: {error}"
        raise LoadError(msg) from None


def parse_faq_export(
    text: str, *, doc_id: str, fallback_source: str, is_json: bool, updated_at=None
) -> list[SourceDocument | Skipped]:
    """Turn a FAQ export into one document per row; rows without question or answer are skipped."""
    rows = _rows_from_json(text) if is_json else _rows_from_csv(text)
    if rows and not any(_pick(r, _QUESTION) and _pick(r, _ANSWER) for r in rows):
        columns = ", ".join(sorted({str(k) for r in rows for k in r}))
        msg = f"a FAQ export needs 'question' and 'answer' columns; found: {columns}"
        raise LoadError(msg)
    results: list[SourceDocument | Skipped] = []
    for number, row in enumerate(rows, start=1):
        question, answer = _pick(row, _QUESTION), _pick(row, _ANSWER)
        row_id = f"{doc_id}#{number}"
        if not question or not answer:
            results.append(Skipped(row_id, "FAQ row without a question or an answer"))
            continue
        source = _pick(row, _URL) or f"{fallback_source}#{number}"
        results.append(SourceDocument(row_id, question, answer, source, updated_at, text_format="text"))
    if not results:
        msg = "the FAQ export has no rows"
        raise LoadError(msg)
    return results
