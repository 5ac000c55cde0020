"""The ledger's domain: goods, stock, units, channels and their rules.

Framework-free by contract (see ``[tool.importlinter]`` in pyproject.toml):
nothing here imports the event store, the web, or a database driver.
"""

from ledger.domain import apikey, channel, command, good, stock, unit  # noqa: F401  (register event types)
