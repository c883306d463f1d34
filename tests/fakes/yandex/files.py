"""Files and vector stores: uploads, indexing, keyword search over the uploaded text."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Yandex's limit per uploaded file (AI Studio docs); `FakeYandex.max_file_bytes` lowers it for tests.
MAX_FILE_BYTES = 128 * 1024 * 1024


# File types Yandex indexes; anything else ends as a failed vector store file (`unsupported_file`).
INDEXABLE_EXTENSIONS: frozenset[str] = frozenset(
    {
        "pdf",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "csv",
        "txt",
        "md",
        "html",
        "htm",
        "rtf",
        "json",
        "xml",
        "tex",
        "latex",
    }
)


_WORD_RE = re.compile(r"\w+", re.UNICODE)


_PASSAGE_CHARS = 800


@dataclass
class FakeFile:
    """One uploaded file (``POST /v1/files``), content kept in memory."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }

    def passages(self) -> list[str]:
        """The text split at blank lines, long paragraphs cut into ~800-character pieces."""
        text = self.content.decode("utf-8", errors="replace")
        result: list[str] = []
        for paragraph in re.split(r"\n\s*\n", text):
            paragraph = paragraph.strip()
            for start in range(0, len(paragraph), _PASSAGE_CHARS):
                result.append(paragraph[start : start + _PASSAGE_CHARS])
        return result


@dataclass
class FakeStoreFile:
    """A file attached to a vector store; indexing "finishes" at ``ready_at`` (monotonic clock)."""

    file_id: str
    created_at: int
    ready_at: float
    usage_bytes: int
    # The last_error to end with instead of "completed" (scripted failure or an unsupported type).
    outcome_error: dict[str, str] | None = None
    status: str = "in_progress"
    last_error: dict[str, str] | None = None

    def refresh(self) -> None:
        if self.status == "in_progress" and time.monotonic() >= self.ready_at:
            self.status = "failed" if self.outcome_error else "completed"
            self.last_error = self.outcome_error

    def to_json(self, store_id: str) -> dict[str, Any]:
        self.refresh()
        return {
            "id": self.file_id,
            "object": "vector_store.file",
            "created_at": self.created_at,
            "usage_bytes": self.usage_bytes if self.status == "completed" else 0,
            "vector_store_id": store_id,
            "status": self.status,
            "last_error": self.last_error,
            "attributes": {},
            "chunking_strategy": {
                "type": "static",
                "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
            },
        }


@dataclass
class FakeVectorStore:
    """One vector store: its attached files in attachment order."""

    id: str
    name: str
    created_at: int
    expires_after: dict[str, Any] | None
    files: dict[str, FakeStoreFile] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts = {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0}
        for entry in self.files.values():
            entry.refresh()
            counts[entry.status] += 1
        return {**counts, "total": len(self.files)}

    def to_json(self) -> dict[str, Any]:
        counts = self.counts()
        expires_at = None
        if self.expires_after:
            expires_at = int(time.time()) + int(self.expires_after["days"]) * 86400
        return {
            "id": self.id,
            "object": "vector_store",
            "created_at": self.created_at,
            "name": self.name,
            "usage_bytes": sum(f.usage_bytes for f in self.files.values() if f.status == "completed"),
            "file_counts": counts,
            "status": "in_progress" if counts["in_progress"] else "completed",
            "expires_after": self.expires_after,
            "expires_at": expires_at,
            "last_active_at": int(time.time()),
            "metadata": {},
        }


@dataclass
class _IndexingFailure:
    matches: Callable[[str], bool]
    code: str
    message: str


def _words(text: str) -> set[str]:
    return {word.lower() for word in _WORD_RE.findall(text)}


def _extension(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
