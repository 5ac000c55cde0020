"""The application service layer: the only write path."""

from ledger.service.ledger import Ledger, utc_now

__all__ = ["Ledger", "utc_now"]
