"""What the projector works on: stored records in, what a batch changed out,
and the view rows one batch reads and writes, worked out in memory."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    """One stored event, as the views need it."""

    position: int
    aggregate_id: str
    version: int
    type: str
    state: bytes


@dataclass
class Changes:
    """What one batch changed, for live listeners (stock streams)."""

    events: int = 0
    position: int = 0
    first_event_at: str | None = None
    last_event_at: str | None = None
    goods: set[str] = field(default_factory=set)  # goods whose stock changed


@dataclass
class Batch:
    """The rows one batch reads and writes, worked out in memory."""

    stock: dict[str, dict[str, Any]] = field(default_factory=dict)
    units: dict[str, dict[str, Any]] = field(default_factory=dict)
    acquisitions: dict[tuple[str, str], str | None] = field(default_factory=dict)  # → channel
    goods: list[tuple[Any, ...]] = field(default_factory=list)
    channels: list[tuple[Any, ...]] = field(default_factory=list)
    good_creators: list[tuple[str, str]] = field(default_factory=list)
    lineage: list[tuple[Any, ...]] = field(default_factory=list)
    variants: Counter[str] = field(default_factory=Counter)
    unit_events: list[tuple[Any, ...]] = field(default_factory=list)
    audit: list[tuple[Any, ...]] = field(default_factory=list)  # one per event
    royalties: dict[tuple[str, str, str, str], list[Any]] = field(default_factory=dict)
    settlement: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    velocity: Counter[tuple[str, str]] = field(default_factory=Counter)
    holds: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    waitlist: dict[str, dict[str, Any]] = field(default_factory=dict)
    touched_stock: set[str] = field(default_factory=set)
    touched_units: set[str] = field(default_factory=set)
