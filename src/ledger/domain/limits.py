"""Every bound the ledger enforces, named once.

The HTTP edge repeats these in its schemas; the domain enforces them again,
so a caller that bypasses the edge meets the same limits.
"""

from __future__ import annotations

BPS_DENOMINATOR = 10_000  # basis points in a whole

ID_CHARS_MAX = 128  # creator, buyer, channel identifiers
TITLE_CHARS_MAX = 200
REASON_CHARS_MAX = 500
IDEMPOTENCY_KEY_CHARS_MAX = 255
CURRENCY_PATTERN = r"^[A-Z]{3}$"  # ISO 4217 alphabetic code
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]*$"
TIER_NAME_PATTERN = r"^[a-z][a-z0-9\-]{0,31}$"
CONTENT_DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"

CREATORS_MAX = 16
TIERS_MAX = 16
TIER_QUOTA_MAX = 10_000_000
VARIANTS_MAX = 10_000
SALE_QUANTITY_MAX = 100  # units in one primary sale command
HOLD_QUANTITY_MAX = SALE_QUANTITY_MAX  # units in one reservation (it may become one sale)
HOLD_TTL_SECONDS_MIN = 1
HOLD_TTL_SECONDS_MAX = 3_600  # a reservation lives at most an hour
WAITLIST_OFFER_TTL_SECONDS = 900  # a restock holds units for a waiting buyer this long
WAITLIST_MAX = 10_000  # buyers waiting on one tier
CODE_CHARS_MAX = 128  # one redemption code
CODE_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces
CODES_PER_IMPORT_MAX = 10_000  # codes in one import command
CODE_RANGE_WIDTH_MAX = 20  # digits of a range's counter
AMOUNT_MAX = 10**12  # minor units in one price; far below 2**53
METADATA_KEYS_MAX = 32
METADATA_BYTES_MAX = 4_096
METADATA_DEPTH_MAX = 4

REQUEST_BODY_BYTES_MAX = 64 * 1024  # one HTTP request body
PAGE_SIZE_DEFAULT = 100  # rows in one page of a list
PAGE_SIZE_MAX = 1_000
SCOPE_CHARS_MAX = 128  # an idempotency scope (the caller's identity)

GOOD_KINDS = ("collectible", "licence", "redemption-code", "ticket", "media", "software")

# Relations between limits, checked when the module loads (TigerBeetle style).
if AMOUNT_MAX * SALE_QUANTITY_MAX >= 2**53:
    raise AssertionError("a sale's total must stay inside the I-JSON integer range")
if TIER_QUOTA_MAX * TIERS_MAX >= 2**53:
    raise AssertionError("supply counts must stay inside the I-JSON integer range")
