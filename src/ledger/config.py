"""Settings, in one place: environment variables prefixed ``LEDGER_`` and an
optional ``.env``-style file. Nothing else in the code reads ``os.environ``
for ledger settings."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.domain import limits
from ledger.domain.actor import DEFAULT_SERVER_NAME
from ledger.projections.bands import BandPolicy
from ledger.store.database import DEFAULT_DATABASE_TIMEOUT, DEFAULT_URL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEDGER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default=DEFAULT_URL,
        description="sqlite:///path.db (default: ./ledger.db) or postgresql://user@host/db",
    )
    database_timeout: float = Field(
        default=DEFAULT_DATABASE_TIMEOUT,
        gt=0,
        le=60,
        description="PostgreSQL: the longest a request waits for the database. Past it -- "
        "or at once while the database is known to be down -- the request is answered 503 "
        "database-unavailable with Retry-After, and no worker thread is held longer",
    )
    aggregate_cache_size: int = Field(default=50_000, ge=0)
    command_retries: int = Field(default=40, ge=1, le=1_000)
    log_key_file: str | None = Field(
        default=None,
        description="Private key file(s) of the log, comma-separated "
        "(rotation: old and new sign side by side); `ledger keys generate` makes one",
    )
    code_keyring_file: str | None = Field(
        default=None,
        description="The redemption codes' keyring (keyed-hash and AES-GCM "
        "keys; keep it apart from the database); `ledger codes keyring` makes one",
    )
    seal_interval: float = Field(
        default=1.0, gt=0, le=60, description="Seconds between checkpoints (at most)"
    )
    verify_max_unsigned_age: float = Field(
        default=300.0,
        ge=0,
        le=10**9,
        description="ledger verify, given a log key or a policy: seconds an event may stay "
        "outside every checkpoint, measured against the newest event's timestamp, before it "
        "is a finding (unsigned-events). The sealer signs every seal_interval (at most 60 s); "
        "the default is ledger.verify.log.UNSIGNED_AGE_DEFAULT",
    )
    projection_poll_interval: float = Field(
        default=0.05,
        gt=0,
        le=10,
        description="Seconds between polls of the store for new events when idle "
        "(SQLite; PostgreSQL is followed by LISTEN/NOTIFY)",
    )
    projection_follow: Literal["listen", "poll"] = Field(
        default="listen",
        description="PostgreSQL: follow new events by LISTEN/NOTIFY (lowest lag) or by "
        "polling every projection_poll_interval (cheaper for the writers under heavy load; "
        "see docs/benchmarks.md). SQLite always polls.",
    )
    projection_process: Literal["auto", "yes", "no"] = Field(
        default="auto",
        description="Apply the views in a process of their own beside the server (yes), in "
        "a thread of the server's (no), or (auto) a process on PostgreSQL when the machine "
        "has more than one processor and a thread otherwise: the thread shares the server's "
        "GIL, so under load the views fall behind (see docs/benchmarks.md)",
    )
    band_plenty_bps: int = Field(
        default=3_000, gt=0, lt=10_000, description="Show the number of units left above this share"
    )
    band_scarce_bps: int = Field(
        default=1_000, gt=0, lt=10_000, description="'scarce' under this share left"
    )
    band_last_chance_bps: int = Field(
        default=500, gt=0, lt=10_000, description="'last chance' under this share left"
    )
    band_hysteresis_bps: int = Field(
        default=200,
        ge=0,
        lt=10_000,
        description="How far the share left must clear a band's edge before the display "
        "eases to a less scarce band (so it does not flap as holds come and go)",
    )
    hold_sweep_interval: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds between sweeps that record the expiry of holds whose time is up",
    )
    webhooks_allow_private: bool = Field(
        default=False,
        description="Let webhooks go to loopback, link-local and private addresses (tests "
        "deliver to a receiver on 127.0.0.1); refused otherwise, at registration and at "
        "every delivery",
    )
    webhooks_timeout: float = Field(
        default=15.0, gt=0, le=30, description="Seconds a webhook delivery may take"
    )
    webhooks_dispatch: bool = Field(
        default=True,
        description="Whether this server may be the one that delivers webhooks (exactly "
        "one server per store does, by a database lock; the others wait to take over)",
    )
    server_name: str = Field(
        default=DEFAULT_SERVER_NAME,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$",
        description="The name the server's own actions (hold expiry sweeps) are recorded "
        "under: the subject of their recorded_by (docs/format.md section 2)",
    )
    velocity_window_minutes: int = Field(
        default=60,
        ge=1,
        le=limits.VELOCITY_WINDOW_MINUTES_MAX,
        description="Window for sales velocity",
    )
    header_bytes_max: int = Field(
        default=limits.HEADER_BYTES_MAX,
        ge=1_024,
        le=1_048_576,
        description="Bytes of one request header (name and value); more is a 431 problem",
    )
    headers_bytes_max: int = Field(
        default=limits.HEADERS_BYTES_MAX,
        ge=4_096,
        le=8_388_608,
        description="Bytes of a request's line and headers together; more is a 431 problem "
        "(the server stops reading the request there)",
    )
    headers_count_max: int = Field(
        default=limits.HEADERS_COUNT_MAX,
        ge=10,
        le=10_000,
        description="Header lines in one request; more is a 431",
    )
    access_log_polling: bool = Field(
        default=True,
        description="ledger serve's access log: also the answered polls of verifier nodes, "
        "witnesses, probes and scrapers (GET /log/..., /healthz, /readyz, /metrics under "
        "400); false leaves them out and keeps every other request and every error",
    )

    log_format: Literal["text", "json"] = Field(
        default="text",
        description="ledger serve's log lines: text (uvicorn's format) or json (one object "
        "a line: time, level, logger, message, request_id, actor, and on the access line "
        "method, route, path, status, problem, latency; docs/api.md)",
    )
    metrics_access: Literal["open", "auditor"] = Field(
        default="open",
        description="Who may read GET /metrics: anyone (open: aggregates without ids, "
        "readable while the database is down) or an auditor or admin key",
    )

    def views_in_process(self, backend: str) -> bool:
        """Whether a server on ``backend`` applies its views in a process of
        their own. Auto: on PostgreSQL, with more than one processor. (On
        SQLite two processes take turns at the file's one writer lock by
        sleeping on it, and the writers wait longer than the GIL made them.)"""
        if self.projection_process == "auto":
            return backend == "postgresql" and (os.cpu_count() or 1) > 1
        return self.projection_process == "yes"

    @model_validator(mode="after")
    def _one_header_within_all(self) -> Settings:
        if self.header_bytes_max > self.headers_bytes_max:
            raise ValueError("header_bytes_max must not exceed headers_bytes_max")
        return self

    def band_policy(self) -> BandPolicy:
        return BandPolicy(
            plenty_bps=self.band_plenty_bps,
            scarce_bps=self.band_scarce_bps,
            last_chance_bps=self.band_last_chance_bps,
            hysteresis_bps=self.band_hysteresis_bps,
        )
