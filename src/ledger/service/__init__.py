"""The application service layer: the only write path."""

from ledger.service.ledger import Ledger, Replayed, utc_now

__all__ = ["Ledger", "Replayed", "utc_now"]
