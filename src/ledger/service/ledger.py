"""The application service: the only write path into the ledger.

Each command is *load -> decide (domain) -> save*: a use case here checks
its input, derives ids and says what it decides; the command runner
(:mod:`ledger.service.runner`) runs it -- idempotency record in the same
transaction as the effects, group commit, retries, careful and optimistic
attempts, an unreachable database -- and the caller gets a typed answer
(:mod:`ledger.service.answers`).
"""

from __future__ import annotations

from ledger.service.cases.accounts import Holders
from ledger.service.cases.apikeys import ApiKeys
from ledger.service.cases.codes import Codes
from ledger.service.cases.core import utc_now
from ledger.service.cases.goods import GoodsAndChannels
from ledger.service.cases.holds import HoldsAndPools
from ledger.service.cases.listing import Listing
from ledger.service.cases.pricing import Pricing
from ledger.service.cases.webhooks import Webhooks


class Ledger(GoodsAndChannels, HoldsAndPools, Listing, Pricing, Codes, Holders, ApiKeys, Webhooks):
    """Goods, stock, units and channels, recorded as hash-chained events.

    One class to callers; its use cases live by area in ``ledger.service.cases``
    (``goods``, ``sales``, ``holds``, ``listing``, ``pricing``, ``codes``, ``accounts``,
    ``apikeys``, ``webhooks``) over one
    core (``cases.core``).
    """


__all__ = ["Ledger", "utc_now"]
