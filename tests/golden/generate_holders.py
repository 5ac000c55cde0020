"""Produce ``vectors_holders.json``: the holders' events (docs/format.md
section 5, "Account", ``unit.moved``, ``unit.transferred``) and a holder's
signed authorization (section 10), from fixed inputs -- Ed25519 signatures
are deterministic, so a fixed key gives fixed bytes.

Run once, by hand, when these events were defined
(``python tests/golden/generate_holders.py``); never regenerate it to make
a test pass. ``tests/unit/test_golden_holders.py`` recomputes it all.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tests.golden.generate import T0

from ledger.domain.account import Account
from ledger.domain.consent import b64url, key_id_of, pae, payload_bytes
from ledger.domain.model import format_timestamp
from ledger.domain.unit import HAND_OFF, HOLDER_SIGNATURE, Unit

SEED = bytes(range(32))  # the holder's private key (a test key: never use it)
GOOD_ID = "5a3e0d22-0f7c-5d36-9e1b-8e5a3c2f7b10"
ORIGIN = "ledger.example/log"
PRICE = {"amount": 999, "currency": "EUR"}


def build() -> dict[str, Any]:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    carol = Account.open("carol", "shop", T0)
    key_id = carol.register_key(b64url(public), channel="shop", now=T0 + timedelta(seconds=1))
    unit = Unit.issue(
        good_id=GOOD_ID,
        tier="own",
        serial=1,
        transferable=True,
        buyer="carol",
        sale_id="11111111-1111-5111-8111-111111111111",
        channel="shop",
        price=PRICE,
        split=[{"recipient": "alice", "role": "creator", "amount": 999}],
        now=T0,
    )
    moved_at = T0 + timedelta(seconds=2)
    body = payload_bytes(
        account="carol",
        unit_id=str(unit.id),
        to_channel="market",
        log=ORIGIN,
        nonce=unit.version,
        expires_at=moved_at + timedelta(minutes=10),
    )
    signature = key.sign(pae(body))
    authorization = {"key_id": key_id, "payload": b64url(body), "signature": b64url(signature)}
    unit.move(
        move_id="22222222-2222-5222-8222-222222222222",
        to_channel="market",
        consent=HOLDER_SIGNATURE,
        authorization=authorization,
        now=moved_at,
    )
    carol.link("market", consent=HOLDER_SIGNATURE, unit_id=str(unit.id), now=moved_at)
    given_at = T0 + timedelta(seconds=3)
    unit.transfer(
        transfer_id="33333333-3333-5333-8333-333333333333",
        giver="carol",
        recipient="dave",
        channel="market",
        kind="gift",
        now=given_at,
    )
    dave = Account.open("dave", "market", given_at)  # (the gift's recipient, new to the ledger)
    handed_at = given_at + timedelta(seconds=1)
    dave.link("shop", consent=HAND_OFF, unit_id=str(unit.id), now=handed_at)
    unit.move(
        move_id="44444444-4444-5444-8444-444444444444",
        to_channel="shop",
        consent=HAND_OFF,
        authorization=None,
        now=handed_at,
    )
    # In log order, as the ledger stores them (a transaction's events by
    # aggregate, in the order each was first touched): the sale (the new
    # account, then the unit), the key, the signed move (the link, then the
    # move), the gift (the unit, then the recipient's new account), the
    # hand-off back (the link, then the move).
    opened, registered, linked = carol.collect_events()
    issued, signed_move, given, handed_off = unit.collect_events()
    dave_opened, dave_linked = dave.collect_events()
    events = [
        opened,
        issued,
        registered,
        linked,
        signed_move,
        given,
        dave_opened,
        dave_linked,
        handed_off,
    ]
    return {
        "format": 1,
        "note": "the holders' events and a signed authorization; the other sets are unchanged",
        "holder_key": {
            "seed_hex": SEED.hex(),
            "public_key": b64url(public),
            "key_id": key_id,
        },
        "authorization": {
            "payload": body.decode(),
            "pae_hex": pae(body).hex(),
            "signature_hex": signature.hex(),
            "wire": authorization,
        },
        "events": [
            {
                "aggregate_id": str(e.originator_id),
                "version": e.originator_version,
                "type": e.TYPE,
                "timestamp": format_timestamp(e.timestamp),
                "payload": e.payload(),
                "prev_hash": e.prev_hash,
                "state": e.state.decode(),
                "record": e.record.decode(),
                "hash": e.hash,
            }
            for e in events
        ],
        "ids": {"account": ["carol", str(carol.id)], "key_id": [b64url(public), key_id_of(public)]},
    }


if __name__ == "__main__":
    target = Path(__file__).with_name("vectors_holders.json")
    if target.exists() and "--force" not in sys.argv:
        sys.exit(f"{target} exists: these vectors are frozen")
    target.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {target}")
