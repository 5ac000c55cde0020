"""The ledger's domain: goods, stock, units, channels and their rules.

Framework-free by contract (see ``[tool.importlinter]`` in pyproject.toml):
nothing here imports the event store, the web, or a database driver.
"""

from ledger.domain import (  # noqa: F401  (register event types)
    account,
    apikey,
    channel,
    command,
    good,
    stock,
    unit,
)
