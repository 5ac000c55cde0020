"""Webhook subscriptions as the API uses them: the ledger's use cases
(:mod:`ledger.service.cases.webhooks`) with the secrets beside the events
(:class:`~ledger.store.webhooks.WebhookStore`), the URL check of the
sender, and the dispatcher nudged after each change.

A secret is stored *before* the event naming its generation, so the
dispatcher never meets a generation without its secret; a registration or
rotation retried with its idempotency key answers the same secret (the
answer names the generation, and the secret is read back beside it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ledger.domain import canonical
from ledger.domain.ids import subscription_id_for
from ledger.domain.model import parse_timestamp
from ledger.domain.subscription import GRACE_DEFAULT, PAYLOAD_VERSION, manages
from ledger.service import Ledger
from ledger.service.cases.webhooks import WebhookAnswer
from ledger.store.webhooks import WebhookStore
from ledger.webhooks.dispatcher import Dispatcher
from ledger.webhooks.sender import Sender, SigningKey, new_secret

Caller = tuple[str, str | None]


@dataclass
class Webhooks:
    ledger: Ledger
    store: WebhookStore
    sender: Sender
    dispatcher: Dispatcher | None = None

    def _nudge(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.nudge()

    def _with_secret(self, answer: WebhookAnswer) -> WebhookAnswer:
        sid, generation = answer.subscription_id, answer.secret_generation
        found = self.store.secrets(sid, (generation,))
        return WebhookAnswer.read({**answer, "secret": found.get(generation)}, answer.replayed)

    def register(
        self, caller: Caller, url: str, types: list[str], *, idempotency_key: str, scope: str
    ) -> WebhookAnswer:
        """A new subscription, with its secret (shown in this answer only)."""
        self.sender.check_url(url)
        sid = subscription_id_for(caller[0], caller[1], idempotency_key)
        self.store.put_secret(sid, 1, new_secret())
        answer = self.ledger.register_webhook(
            sid, caller, url, types, idempotency_key=idempotency_key, scope=scope
        )
        self._nudge()
        return self._with_secret(answer)

    def rotate(
        self,
        sid: str,
        caller: Caller,
        grace: timedelta | None,
        *,
        idempotency_key: str,
        scope: str,
    ) -> WebhookAnswer:
        """A new secret; the old one keeps signing until the grace ends."""
        generation = self.ledger.webhook(sid, caller).generation + 1
        self.store.put_secret(sid, generation, new_secret())
        answer = self.ledger.rotate_webhook_secret(
            sid,
            caller,
            generation,
            GRACE_DEFAULT if grace is None else grace,
            idempotency_key=idempotency_key,
            scope=scope,
        )
        self._nudge()
        return self._with_secret(answer)

    def change(
        self, action: str, sid: str, caller: Caller, *, idempotency_key: str, scope: str
    ) -> WebhookAnswer:
        """``pause``, ``resume`` or ``delete``."""
        act = {
            "pause": self.ledger.pause_webhook,
            "resume": self.ledger.resume_webhook,
            "delete": self.ledger.delete_webhook,
        }[action]
        answer = act(sid, caller, idempotency_key=idempotency_key, scope=scope)
        self._nudge()
        return answer

    def replay(
        self,
        sid: str,
        caller: Caller,
        *,
        from_position: int | None,
        since: datetime | None,
        idempotency_key: str,
        scope: str,
    ) -> WebhookAnswer:
        """Deliver again from a store position, or from the first event at
        or after a moment."""
        self.ledger.webhook(sid, caller)
        position = from_position if since is None else self.position_at(since)
        answer = self.ledger.replay_webhook(
            sid, caller, position or 0, idempotency_key=idempotency_key, scope=scope
        )
        self._nudge()
        return answer

    def position_at(self, since: datetime) -> int:
        """The first store position whose event's timestamp is at or after
        ``since`` (a binary search: timestamps rise with positions, give or
        take a batch's spread)."""
        recorder = self.ledger.event_store.recorder
        low, high = 1, int(recorder.max_notification_id() or 0) + 1
        while low < high:
            mid = (low + high) // 2
            rows = recorder.select_notifications(start=mid, limit=1)
            if not rows:
                high = mid
                continue
            stamp = parse_timestamp(orjson.loads(bytes(rows[0].state))["timestamp"])
            if stamp < since:
                low = rows[0].id + 1
            else:
                high = mid
        return low

    def listing(self, caller: Caller) -> list[dict[str, Any]]:
        """The caller's subscriptions (an admin's: all), deleted ones left out."""
        recorder = self.ledger.event_store.recorder
        found, start = [], 1
        while True:
            rows = recorder.select_notifications(
                start=start, limit=1000, topics=["webhook.registered"]
            )
            for row in rows:
                sid = orjson.loads(bytes(row.state))["payload"]["subscription_id"]
                sub = self.ledger.webhook(sid)
                if sub.state != "deleted" and manages(sub, *caller):
                    found.append(sub.to_json())
            if len(rows) < 1000:
                return found
            start = rows[-1].id + 1

    def deliveries(
        self, sid: str, caller: Caller, *, before: int | None, limit: int
    ) -> dict[str, Any]:
        self.ledger.webhook(sid, caller)
        rows = self.store.attempts(sid, after=before, limit=limit)
        cursors = self.store.cursors()
        cursor = cursors.get(sid)
        return {
            "subscription_id": sid,
            "position": None if cursor is None else cursor.position,
            "attempts": [r.to_json() for r in rows],
            "next": str(rows[-1].seq) if len(rows) == limit and rows else None,
        }

    def ping(self, sid: str, caller: Caller) -> dict[str, Any]:
        """Send a test message now (not logged, not retried), signed as the
        events are."""
        sub = self.ledger.webhook(sid, caller)
        now = datetime.now(UTC)
        msg_id = "ping_" + secrets.token_hex(12)
        body = canonical.encode(
            {
                "id": msg_id,
                "type": "webhook.ping",
                "version": PAYLOAD_VERSION,
                "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "data": {"subscription_id": sid},
            }
        )
        generations = [sub.generation]
        if sub.grace_until is not None and parse_timestamp(sub.grace_until) > now:
            generations.append(sub.generation - 1)
        found = self.store.secrets(sid, generations)
        keys = [SigningKey("v1", found[g]) for g in generations if g in found]
        attempt = self.sender.send(sub.url, msg_id=msg_id, body=body, keys=keys, now=now)
        return {
            "webhook_id": msg_id,
            "delivered": attempt.delivered,
            "status": attempt.status,
            "latency_ms": round(attempt.latency_ms, 3),
            "error": attempt.error,
            "response_excerpt": attempt.excerpt,
        }
