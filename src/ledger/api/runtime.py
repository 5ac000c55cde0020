"""What a running server holds: the ledger, its log and sealer, the views
and their runner, and the API keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ledger.projections import ProjectionRunner, ProjectionStore, Views
from ledger.projections.process import ProcessRunner
from ledger.service import Ledger
from ledger.service.holds import HoldSweeper
from ledger.service.proofs import CheckedProofs
from ledger.service.sealer import Sealer, SealerThread
from ledger.service.witnessing import WitnessPusher
from ledger.store.apikeys import ApiKeyStore
from ledger.store.codevault import Keyring
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog.note import Signer
from ledger.tlog.policy import Policy

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

    def start(self) -> None:
        if self.runner is not None:
            self.runner.start()
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


def open_runtime(url: DatabaseURL, settings: Settings, *, signers: Sequence[Signer] = (),
                 policy: Policy | None = None, code_keyring: Keyring | None = None) -> Runtime:
    """Everything ``ledger serve`` runs, on one store (tables created as needed)."""
    ledger = Ledger(url, retries=settings.command_retries,
                    cache_size=settings.aggregate_cache_size, code_keyring=code_keyring)
    try:
        recorder = ledger.event_store.recorder
        log = LogStore(recorder)
        sealer = None
        if signers:
            sealer = Sealer(ledger.event_store, log, origin=signers[0].name, signers=signers)
        projections = ProjectionStore(recorder, bands=settings.band_policy())
        listen = None
        if url.backend == "postgresql" and settings.projection_follow == "listen":
            listen = {"host": url.host, "port": url.port, "user": url.user,
                      "password": url.password, "dbname": url.dbname}
        runner = (ProcessRunner(projections, url, bands=settings.band_policy(),
                                poll_interval=settings.projection_poll_interval,
                                listen_dsn=listen)
                  if settings.views_in_process(url.backend) else
                  ProjectionRunner(projections, poll_interval=settings.projection_poll_interval,
                                   listen_dsn=listen))
        return Runtime(ledger, log, sealer, seal_interval=settings.seal_interval, policy=policy,
                       projections=projections, runner=runner,
                       api_keys=ApiKeyStore(recorder),
                       velocity_window_minutes=settings.velocity_window_minutes,
                       hold_sweep_interval=settings.hold_sweep_interval)
    except BaseException:
        ledger.close()
        raise
