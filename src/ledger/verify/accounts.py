"""Accounts and custody (rule 8.13): a channel acts only for the accounts
it serves, and only on units held through it.

An account is opened once, by a registered channel, which serves it; a
channel comes to serve it later only by ``account.linked``. Every act
names an account and the channel acting: a unit issued or reissued to its
holder, a resale's buyer, a waitlist entry's buyer. The account's opening
may follow the act in the log (the ledger opens an account in the
transaction of its first act, and a transaction's events are ordered by
aggregate), so an act for an account not opened yet is remembered, and the
opening must then be by the same channel; an act whose account is never
opened is a finding at the end of the log. A unit's *custody* is the
channel of its holder's acquisition (a refunded resale: the seller's,
through the resale's channel); only that channel resells it.
"""

from __future__ import annotations

from ledger.verify.consent import authorization_problem, key_id_of, unb64url
from ledger.verify.facts import Event, Facts, Handler, Payload, short
from ledger.verify.packing import Unit, uuid_key

# Acts remembered for an account not opened yet, at most (then the oldest
# is settled as a finding: a log never opening thousands of accounts it
# acts for is damaged anyway).
_PENDING_MAX = 1_000_000


class AccountRules:
    """``account.opened``, ``account.linked``, and the acts other families
    report (:meth:`act`, :meth:`check_custody`)."""

    def __init__(self, facts: Facts) -> None:
        self._facts = facts
        self._flag = facts.flag
        self._served: dict[str, list[str]] = {}  # account -> channels serving it
        self._names: dict[str | None, str] = {}  # aggregate id -> account
        self._pending: dict[str, list[tuple[Event, str]]] = {}
        self._pending_count = 0
        self._keys: dict[str, dict[str, bytes]] = {}  # account -> key id -> raw key
        # Links awaiting their move: (unit id, channel) -> (link event, consent).
        self._links: dict[tuple[str, str], tuple[Event, str]] = {}

    def on_opened(self, ev: Event, p: Payload) -> None:
        account, channel = p["account"], p["channel"]
        self._facts.check_own_id(ev, p)
        self.check_actor(ev, channel)
        self._registered(ev, channel)
        self._names[ev.aggregate_id] = account
        self._served[account] = [channel]
        for act, acting in self._pending.pop(account, ()):
            self._pending_count -= 1
            if acting != channel:
                self._not_served(act, account, acting, [channel])

    def on_linked(self, ev: Event, p: Payload) -> None:
        account = self._names.get(ev.aggregate_id)
        if account is None:
            return  # (the chain rules report an aggregate without its creation)
        channel = p["channel"]
        self._registered(ev, channel)
        channels = self._served[account]
        if channel in channels:
            self._flag(ev, "account-state", f"channel {short(channel)} already serves {account}")
            return
        channels.append(channel)
        self._links[(p["unit_id"], channel)] = (ev.ref(), p["consent"])

    def on_key_registered(self, ev: Event, p: Payload) -> None:
        account = self._names.get(ev.aggregate_id)
        if account is None:
            return
        self.act(ev, account, p["channel"])
        self.check_actor(ev, p["channel"])
        raw = unb64url(p["public_key"])
        keys = self._keys.setdefault(account, {})
        if raw is None or len(raw) != 32 or key_id_of(raw) != p["key_id"]:
            self._flag(
                ev,
                "holder-key",
                f"key {short(p['key_id'])} is not the first 16 hex digits of the SHA-256 "
                "of a 32-byte Ed25519 public key in base64url",
            )
        elif p["key_id"] in keys:
            self._flag(ev, "holder-key", f"key {p['key_id']} is registered already")
        else:
            keys[p["key_id"]] = raw

    def on_key_revoked(self, ev: Event, p: Payload) -> None:
        account = self._names.get(ev.aggregate_id)
        if account is None:
            return
        self.act(ev, account, p["channel"])
        self.check_actor(ev, p["channel"])
        if self._keys.get(account, {}).pop(p["key_id"], None) is None:
            self._flag(ev, "holder-key", f"key {short(p['key_id'])} is not in force")

    def on_moved(self, ev: Event, p: Payload) -> None:
        """A unit taken to another channel, with its holder's consent."""
        unit = self._facts.packed.unit(ev.key)
        if unit is None or ev.aggregate_id is None:
            return
        holder, to_channel, consent = p["holder"], p["to_channel"], p["consent"]
        if unit.holder != holder:
            self._flag(ev, "not-holder", f"{short(holder)} does not hold the unit")
        self.check_custody(ev, unit, p["from_channel"])
        self._registered(ev, to_channel)
        if to_channel == p["from_channel"]:
            self._flag(ev, "move-state", f"the unit is held through {short(to_channel)} already")
        self.check_actor(ev, p["from_channel"] if consent == "hand-off" else to_channel)
        problem = self._consent_problem(ev, p, consent)
        if problem is not None:
            self._flag(ev, "move-consent", problem)
        link = self._links.pop((ev.aggregate_id, to_channel), None)
        if link is not None and link[1] != consent:
            self._flag(link[0], "move-consent", f"linked by {link[1]}, moved by {consent}")
        self.act(ev, holder, to_channel)  # (served from its link on)
        unit.custody = to_channel
        self._facts.packed.keep_unit(ev.key, unit)

    def _consent_problem(self, ev: Event, p: Payload, consent: str) -> str | None:
        authorization = p.get("authorization")
        if consent == "hand-off":
            return None if authorization is None else "a hand-off carries no authorization"
        if consent != "holder-signature":
            return f"unknown consent {short(consent)}"
        return authorization_problem(
            authorization,
            unit_id=ev.aggregate_id or "",
            version=ev.version or 0,
            holder=p["holder"],
            to_channel=p["to_channel"],
            timestamp=ev.timestamp or "",
            keys=self._keys.get(p["holder"], {}),
        )

    def around(self, handlers: dict[str, Handler]) -> dict[str, Handler]:
        """The other families' handlers, with this rule's checks of the events
        they own: a waitlist entry acts for its buyer, through its channel;
        a code delivery (which names no channel) by the channel holding the
        unit."""
        waitlisted, delivered = handlers["stock.waitlisted"], handlers["code.delivered"]

        def on_waitlisted(ev: Event, p: Payload) -> None:
            waitlisted(ev, p)
            self.act(ev, p["buyer"], p["channel"])
            self.check_actor(ev, p["channel"])

        def on_code_delivered(ev: Event, p: Payload) -> None:
            unit = self._facts.packed.unit(uuid_key(p["unit_id"]))
            self.check_actor(ev, unit.custody if unit is not None else None)
            delivered(ev, p)

        return handlers | {"stock.waitlisted": on_waitlisted, "code.delivered": on_code_delivered}

    def act(self, ev: Event, account: str, channel: str) -> None:
        """``channel`` acts for ``account`` at ``ev``."""
        channels = self._served.get(account)
        if channels is None:
            if self._pending_count >= _PENDING_MAX:
                self._settle_oldest()
            self._pending.setdefault(account, []).append((ev.ref(), channel))
            self._pending_count += 1
        elif channel not in channels:
            self._not_served(ev, account, channel, channels)

    def check_actor(self, ev: Event, channel: str | None) -> None:
        """A channel's key acts only as that channel: an event it recorded
        (``recorded_by``, role ``channel``) acts for ``channel`` -- the one
        the event names, or for a refund or a code delivery, which name
        none, the one holding the unit."""
        actor = ev.recorded_by
        if actor is not None and actor["role"] == "channel" and actor["subject"] != channel:
            self._flag(
                ev,
                "acting-channel",
                f"recorded by channel {short(actor['subject'])}'s key, acting as {short(channel)}",
                expected=actor["subject"],
                actual=str(channel),
            )

    def check_custody(self, ev: Event, unit: Unit, channel: str) -> None:
        """Only the channel a unit is held through acts on it."""
        if unit.holder is not None and unit.custody != channel:
            self._flag(
                ev,
                "not-in-custody",
                f"the unit is held through channel {short(unit.custody)}; "
                f"{short(channel)} cannot act on it",
                expected=unit.custody,
                actual=channel,
            )

    def finish(self) -> None:
        for (unit_id, channel), (link, _) in self._links.items():
            self._flag(
                link,
                "account-state",
                f"the account is linked to {short(channel)} for unit {unit_id}, "
                "which is never moved there",
            )
        self._links.clear()
        for account, acts in self._pending.items():
            for act, channel in acts:
                self._flag(
                    act,
                    "not-served",
                    f"channel {short(channel)} acts for account {short(account)}, "
                    "which is never opened",
                )
        self._pending.clear()
        self._pending_count = 0

    def _settle_oldest(self) -> None:
        account = next(iter(self._pending))
        for act, channel in self._pending.pop(account):
            self._pending_count -= 1
            self._flag(
                act,
                "not-served",
                f"channel {short(channel)} acts for account {short(account)}, "
                "not opened within the verifier's window of pending acts",
            )

    def _registered(self, ev: Event, channel: str) -> None:
        if channel not in self._facts.channels:
            self._flag(ev, "unknown-ref", f"channel {short(channel)} is not registered")

    def _not_served(self, ev: Event, account: str, channel: str, channels: list[str]) -> None:
        self._flag(
            ev,
            "not-served",
            f"channel {short(channel)} acts for account {short(account)}, served by "
            + ", ".join(map(short, channels)),
            expected=",".join(channels),
            actual=channel,
        )
