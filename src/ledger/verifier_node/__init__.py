"""Verifier nodes: independent processes that follow the ledger over HTTP,
re-verify every entry, and cosign checkpoints they have checked."""
