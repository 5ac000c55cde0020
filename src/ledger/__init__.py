"""ledger: a verifiable, event-sourced ledger of digital goods."""

__version__ = "0.1.0"
