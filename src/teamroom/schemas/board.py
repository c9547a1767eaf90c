"""The findings board: entries in scopes, and what an agent has not read yet."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from teamroom.schemas.common import Model

BoardKind = Literal["finding", "status", "intent", "question", "decision", "note"]
BOARD_KINDS: tuple[str, ...] = BoardKind.__args__  # type: ignore[attr-defined]


class BoardEntry(Model):
    id: str
    seq: int
    scope: str
    author: str
    kind: BoardKind
    title: str | None
    body: str
    tags: list[str]
    refs: list[str]
    supersedes: str | None
    superseded_by: str | None = Field(None, description="set when a later entry replaced this one")
    posted_at: str


class PostResult(Model):
    id: str
    seq: int
    scope: str
    owner: str = Field(description="the scope's owner: the only agent who posts decisions")


class ReadBoardResult(Model):
    scope: str
    owner: str | None = Field(description="who opened the scope; null while nobody has posted to it")
    entries: list[BoardEntry]
    cursor: int = Field(description="the seq read up to; pass it as since to read on from there")
    unread: int | None = Field(description="entries still unread by you in this scope after this read")
