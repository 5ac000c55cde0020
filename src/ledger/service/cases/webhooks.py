"""Use cases, webhook subscriptions: registered, rotated, paused, resumed,
deleted, replayed by their owner (or an admin), marked failing by the
server. Each is an event of ``webhook/<subscription_id>`` (docs/format.md
section 5); the secrets are not: :mod:`ledger.webhooks` keeps them beside
the events and calls these after storing a new one.

Who may manage a subscription is the domain's rule
(:func:`ledger.domain.subscription.manages`); anyone else is told it does
not exist (404), as a read of another channel's hold would be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.domain.errors import ConflictError, NotFoundError
from ledger.domain.ids import webhook_id_for
from ledger.domain.subscription import Subscription, manages
from ledger.service.answers import Answer
from ledger.service.cases.core import LedgerCore
from ledger.service.unit_of_work import UnitOfWork


class WebhookNotFoundError(NotFoundError):
    code = "webhook-not-found"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"no webhook {subscription_id}")


class WebhookExistsError(ConflictError):
    code = "webhook-exists"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"webhook {subscription_id} is already registered")


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class WebhookAnswer(Answer):
    """A subscription as a command left it (``secret_generation``: the
    secret that is new, if the command made one)."""

    subscription_id: str
    state: str
    secret_generation: int


def _answer(answer: dict[str, Any], replayed: bool) -> WebhookAnswer:
    return WebhookAnswer.read(answer, replayed)


Caller = tuple[str, str | None]  # role, subject


class Webhooks(LedgerCore):
    """Webhook subscriptions, as events."""

    def webhook(self, subscription_id: str, caller: Caller | None = None) -> Subscription:
        """A subscription as stored now (404 if missing, or not the caller's)."""
        missing = WebhookNotFoundError(subscription_id)
        try:
            found = self._load(Subscription, webhook_id_for(subscription_id), missing)
        except ValueError:
            raise missing from None
        if caller is not None and not manages(found, *caller):
            raise missing
        return found

    def register_webhook(
        self,
        subscription_id: str,
        caller: Caller,
        url: str,
        types: Sequence[str],
        *,
        idempotency_key: str,
        scope: str,
    ) -> WebhookAnswer:
        role, subject = caller
        args = {"subscription_id": subscription_id, "url": url, "types": list(types)}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            made = Subscription.register(subscription_id, role, subject, url, types, now)
            if uow.get(Subscription, made.id) is not None:
                raise WebhookExistsError(subscription_id)
            uow.add(made)
            return made.to_json()

        return self._runner.run(
            "register-webhook", args, idempotency_key, scope, None, decide, _answer
        )

    def _change(
        self,
        name: str,
        subscription_id: str,
        caller: Caller | None,
        act: Any,
        *,
        idempotency_key: str,
        scope: str,
        args: dict[str, Any] | None = None,
    ) -> WebhookAnswer:
        self.webhook(subscription_id, caller)  # 404 before anything else
        recorded = caller is not None

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            sub = uow.get(Subscription, webhook_id_for(subscription_id))
            if sub is None:
                raise WebhookNotFoundError(subscription_id)
            act(sub, now)
            return {**sub.to_json(), **(args or {})}

        return self._runner.run(
            name,
            {"subscription_id": subscription_id, **(args or {})},
            idempotency_key,
            scope,
            None,
            decide,
            _answer,
            recorded=recorded,
        )

    def rotate_webhook_secret(
        self,
        subscription_id: str,
        caller: Caller,
        generation: int,
        grace: timedelta,
        *,
        idempotency_key: str,
        scope: str,
    ) -> WebhookAnswer:
        return self._change(
            "rotate-webhook-secret",
            subscription_id,
            caller,
            lambda sub, now: sub.rotate(generation, grace, now),
            idempotency_key=idempotency_key,
            scope=scope,
            args={"grace_seconds": int(grace.total_seconds())},
        )

    def pause_webhook(
        self, subscription_id: str, caller: Caller, *, idempotency_key: str, scope: str
    ) -> WebhookAnswer:
        return self._change(
            "pause-webhook",
            subscription_id,
            caller,
            lambda s, now: s.pause(now),
            idempotency_key=idempotency_key,
            scope=scope,
        )

    def resume_webhook(
        self, subscription_id: str, caller: Caller, *, idempotency_key: str, scope: str
    ) -> WebhookAnswer:
        return self._change(
            "resume-webhook",
            subscription_id,
            caller,
            lambda s, now: s.resume(now),
            idempotency_key=idempotency_key,
            scope=scope,
        )

    def delete_webhook(
        self, subscription_id: str, caller: Caller, *, idempotency_key: str, scope: str
    ) -> WebhookAnswer:
        return self._change(
            "delete-webhook",
            subscription_id,
            caller,
            lambda s, now: s.delete(now),
            idempotency_key=idempotency_key,
            scope=scope,
        )

    def replay_webhook(
        self,
        subscription_id: str,
        caller: Caller,
        from_position: int,
        *,
        idempotency_key: str,
        scope: str,
    ) -> WebhookAnswer:
        return self._change(
            "replay-webhook",
            subscription_id,
            caller,
            lambda s, now: s.replay(from_position, now),
            args={"from_position": from_position},
            idempotency_key=idempotency_key,
            scope=scope,
        )

    def webhook_failing(
        self, subscription_id: str, position: int, attempts: int, reason: str
    ) -> WebhookAnswer:
        """The server gives up on an event (housekeeping: no key, no record)."""
        return self._change(
            "webhook-failing",
            subscription_id,
            None,
            lambda s, now: s.fail(position, attempts, reason, now),
            idempotency_key="",
            scope="",
        )
