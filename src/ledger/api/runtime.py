"""What a running server holds: the ledger, its log and sealer, the views
and their runner, and the API keys."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ledger.domain.actor import acting
from ledger.domain.alarms import Push
from ledger.projections import ProjectionRunner, ProjectionStore, Views
from ledger.projections.process import ProcessRunner
from ledger.service import Ledger
from ledger.service.holds import HoldSweeper
from ledger.service.proofs import CheckedProofs
from ledger.service.sealer import Sealer, SealerThread
from ledger.service.witnessing import WitnessPusher
from ledger.store.apikeys import ApiKeyStore
from ledger.store.availability import unavailable_reason
from ledger.store.codevault import Keyring
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.store.postgres import availability_of
from ledger.store.webhooks import WebhookStore
from ledger.tlog.keys import Signer
from ledger.tlog.policy import Policy
from ledger.webhooks.dispatcher import Dispatcher
from ledger.webhooks.sender import Sender
from ledger.webhooks.subscriptions import Webhooks

if TYPE_CHECKING:
    from ledger.config import Settings


@dataclass
class Runtime:
    ledger: Ledger
    log: LogStore
    sealer: Sealer | None = None
    seal_interval: float = 1.0
    policy: Policy | None = None  # whose cosignatures the ledger accepts
    projections: ProjectionStore | None = None
    runner: ProjectionRunner | None = None
    api_keys: ApiKeyStore | None = None
    velocity_window_minutes: int = 60
    hold_sweep_interval: float = 1.0
    webhooks: Webhooks | None = None
    _thread: SealerThread | None = field(default=None, init=False, repr=False)
    _sweeper: HoldSweeper | None = field(default=None, init=False, repr=False)
    _pusher: WitnessPusher | None = field(default=None, init=False, repr=False)
    _proofs: CheckedProofs | None = field(default=None, init=False, repr=False)

    @property
    def origin(self) -> str:
        return self.sealer.origin if self.sealer is not None else ""

    @property
    def proofs(self) -> CheckedProofs:
        """Proofs verified against the log's signed root before they are sent."""
        if self._proofs is None:
            self._proofs = CheckedProofs(self.log, self.ledger.event_store)
        return self._proofs

    @property
    def views(self) -> Views:
        if self.projections is None:
            raise RuntimeError("this server runs without views")
        return Views(self.projections)

    def last_pushes(self) -> dict[str, Push]:
        """The last push of a checkpoint to each verifier with a URL, and
        what came of it (empty when nothing pushes)."""
        return {} if self._pusher is None else self._pusher.last_pushes()

    def readiness(self) -> dict[str, bool]:
        """What is ready: the database (answering, as far as this process
        knows), the views (caught up once, last batch applied) and the
        sealer (its last round sealed)."""
        availability = availability_of(self.ledger.event_store.recorder)
        views = self.runner is None or (
            self.runner.caught_up.is_set() and self.runner.error is None
        )
        sealer = self.sealer is None or (self._thread is not None and self._thread.ready)
        return {
            "database": availability is None or not availability.down,
            "views": views,
            "sealer": sealer,
        }

    def start(self) -> None:
        if self.runner is not None:
            self.runner.start()
        if self.webhooks is not None and self.webhooks.dispatcher is not None:
            self.webhooks.dispatcher.start()
        if self.projections is not None and self._sweeper is None:
            views = self.views
            self._sweeper = HoldSweeper(self.ledger, views.due_holds, self.hold_sweep_interval)
            self._sweeper.start()
        if self.sealer is not None and self._thread is None:
            if self.policy is not None and any(self.policy.witness_urls.values()):
                self._pusher = WitnessPusher(self.log, self.policy, proofs=self.proofs)
            on_seal = self._pusher.push if self._pusher is not None else None
            self._thread = SealerThread(self.sealer, self.seal_interval, on_seal=on_seal)
            self._thread.start()

    def stop(self) -> None:
        if self.webhooks is not None and self.webhooks.dispatcher is not None:
            self.webhooks.dispatcher.stop()
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        if self._pusher is not None:
            self._pusher.close()
            self._pusher = None
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        if self.runner is not None:
            self.runner.stop()


def open_runtime(
    url: DatabaseURL,
    settings: Settings,
    *,
    signers: Sequence[Signer] = (),
    policy: Policy | None = None,
    code_keyring: Keyring | None = None,
) -> Runtime:
    """Everything ``ledger serve`` runs, on one store (tables created as needed)."""
    url = dataclasses.replace(url, timeout=settings.database_timeout)
    ledger = Ledger(
        url,
        retries=settings.command_retries,
        cache_size=settings.aggregate_cache_size,
        code_keyring=code_keyring,
        log_origin=signers[0].name if signers else None,
        server_name=settings.server_name,
    )
    try:
        recorder = ledger.event_store.recorder
        log = LogStore(recorder)
        sealer = None
        if signers:
            sealer = Sealer(ledger.event_store, log, origin=signers[0].name, signers=signers)
        projections = ProjectionStore(recorder, bands=settings.band_policy())
        runner = _views_runner(projections, url, settings)
        api_keys = ApiKeyStore(recorder, events=ledger)  # issue and revocation as events
        with acting(ledger.server_actor()):
            api_keys.repair_events()  # rows written without their events (older versions)
        webhooks = _webhooks(ledger, url, settings, code_keyring)
        return Runtime(
            ledger,
            log,
            sealer,
            seal_interval=settings.seal_interval,
            policy=policy,
            projections=projections,
            runner=runner,
            api_keys=api_keys,
            velocity_window_minutes=settings.velocity_window_minutes,
            hold_sweep_interval=settings.hold_sweep_interval,
            webhooks=webhooks,
        )
    except BaseException:
        ledger.close()
        raise


def _webhooks(
    ledger: Ledger, url: DatabaseURL, settings: Settings, keyring: Keyring | None
) -> Webhooks:
    """Subscriptions' secrets, the sender, and (unless told not to) a
    dispatcher that delivers while this process holds the dispatch lock."""
    store = WebhookStore(ledger.event_store.recorder, keyring)
    sender = Sender(
        allow_private=settings.webhooks_allow_private, timeout=settings.webhooks_timeout
    )
    dispatcher = None
    if settings.webhooks_dispatch:
        dispatch_sender = Sender(
            allow_private=settings.webhooks_allow_private, timeout=settings.webhooks_timeout
        )
        dispatcher = Dispatcher(ledger, store, dispatch_sender, url)
    return Webhooks(ledger, store, sender, dispatcher)


def _views_runner(
    projections: ProjectionStore, url: DatabaseURL, settings: Settings
) -> ProjectionRunner:
    """The views' runner: in a process of its own or a thread (settings),
    following PostgreSQL by LISTEN unless told to poll."""
    listen = None
    if url.backend == "postgresql" and settings.projection_follow == "listen":
        listen = {
            "host": url.host,
            "port": url.port,
            "user": url.user,
            "password": url.password,
            "dbname": url.dbname,
            "connect_timeout": max(2, math.ceil(url.timeout)),
        }
    if settings.views_in_process(url.backend):
        return ProcessRunner(
            projections,
            url,
            bands=settings.band_policy(),
            json_logs=settings.log_format == "json",
            poll_interval=settings.projection_poll_interval,
            listen_dsn=listen,
        )
    return ProjectionRunner(
        projections, poll_interval=settings.projection_poll_interval, listen_dsn=listen
    )


logger = logging.getLogger("ledger.serve")
OPEN_RETRY_SECONDS = 0.25  # between attempts to reach a database that is down


class RuntimeOpener(threading.Thread):
    """Opens the runtime once the database answers (``ledger serve`` on
    PostgreSQL listens at once; until then every route but ``/healthz`` and
    ``/readyz`` answers 503 not-ready).

    Each attempt first connects once (cheap, bounded by the URL's timeout);
    only when that works is the runtime opened -- tables, views, sealer."""

    def __init__(
        self, url: DatabaseURL, open_: Callable[[], Runtime], on_open: Callable[[Runtime], object]
    ) -> None:
        super().__init__(name="ledger-opener", daemon=True)
        self._url = url
        self._open = open_
        self._on_open = on_open
        self._stop_event = threading.Event()
        self.waiting_since = time.monotonic()
        self.reason: str | None = None  # why the last attempt failed

    def _reach(self) -> None:
        import psycopg  # noqa: PLC0415 - PostgreSQL only

        url = self._url
        with psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.user,
            password=url.password,
            dbname=url.dbname,
            autocommit=True,
            connect_timeout=max(2, math.ceil(url.timeout)),
        ) as connection:
            connection.execute("SELECT 1")

    def run(self) -> None:
        display = self._url.display()
        while not self._stop_event.is_set():
            try:
                if self._url.backend == "postgresql":
                    self._reach()
                runtime = self._open()
            except Exception as error:
                reason = unavailable_reason(error)
                if reason is None:
                    reason = f"{type(error).__name__}: {error}"
                    logger.exception("cannot open the store at %s; trying again", display)
                elif reason != self.reason:
                    logger.warning(
                        "waiting for the database at %s (%s); /healthz answers, "
                        "everything else 503 until it does",
                        display,
                        reason,
                    )
                self.reason = reason
                self._stop_event.wait(OPEN_RETRY_SECONDS)
                continue
            if self._stop_event.is_set():
                runtime.ledger.close()
                return
            self._on_open(runtime)
            logger.info(
                "the database at %s answers: serving (after %.1f s)",
                display,
                time.monotonic() - self.waiting_since,
            )
            return

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)
