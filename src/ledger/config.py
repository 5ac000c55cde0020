"""Settings, in one place: environment variables prefixed ``LEDGER_`` and an
optional ``.env``-style file. Nothing else in the code reads ``os.environ``
for ledger settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.store.database import DEFAULT_URL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEDGER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default=DEFAULT_URL,
        description="sqlite:///path.db (default: ./ledger.db) or postgresql://user@host/db",
    )
    aggregate_cache_size: int = Field(default=50_000, ge=0)
    command_retries: int = Field(default=40, ge=1, le=1_000)
    log_key_file: str | None = Field(
        default=None, description="Private key file(s) of the log, comma-separated "
        "(rotation: old and new sign side by side); `ledger keys generate` makes one")
    seal_interval: float = Field(default=1.0, gt=0, le=60,
                                 description="Seconds between checkpoints (at most)")
