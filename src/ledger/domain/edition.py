"""A unit's place in its edition: "No. k of N".

Every answer that names a unit by its serial (the views, sale and resale
answers, the provenance bundle) carries the same member::

    "edition": {"serial": 37, "of": 500, "basis": "quota"}

``of`` is the tier's edition size, fixed when its stock opened:

* an ``absolute`` edition's tier: its ``quota``, which is its supply for
  ever (nothing restocks it) -- basis ``"quota"``;
* a ``restockable`` edition's tier: its ``lifetime_cap``, the most its
  restocks may ever bring the supply to -- basis ``"lifetime-cap"``; a tier
  that declares no cap has its quota for one, so ``of`` is never open.

An absolute tier's ``lifetime_cap`` equals its quota (docs/format.md), so in
both cases ``of`` is the stock's ``lifetime_cap``; the basis says what it
means to the client.
"""

from __future__ import annotations

from typing import Any

QUOTA = "quota"  # "of" is the edition: no more units will ever exist
LIFETIME_CAP = "lifetime-cap"  # "of" is the cap that restocks may reach


def edition_size(lifetime_cap: int, restockable: bool) -> tuple[int, str]:
    """A tier's ``(of, basis)``, from its stock's ``lifetime_cap`` and
    whether its edition is restockable."""
    return lifetime_cap, LIFETIME_CAP if restockable else QUOTA


def edition(serial: int, size: tuple[int, str]) -> dict[str, Any]:
    """The ``edition`` member of unit No. ``serial`` of a tier of ``size``
    (:func:`edition_size`)."""
    return {"serial": serial, "of": size[0], "basis": size[1]}
