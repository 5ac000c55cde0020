"""The application service layer: the only write path."""

from ledger.service.answers import Answer, Replayed
from ledger.service.ledger import Ledger, utc_now

__all__ = ["Answer", "Ledger", "Replayed", "utc_now"]
