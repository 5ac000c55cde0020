"""Read models: live, exactly-once views rebuilt from the events
(see docs/architecture.md, "Reads")."""

from ledger.projections.bands import BandPolicy
from ledger.projections.queries import Page, Views
from ledger.projections.runner import ProjectionRunner
from ledger.projections.store import ProjectionStore

__all__ = ["BandPolicy", "Page", "ProjectionRunner", "ProjectionStore", "Views"]
