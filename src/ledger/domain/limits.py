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
WEBHOOK_GRACE_SECONDS_MAX = 7 * 24 * 3_600  # an old webhook secret signs at most a week more
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

# Integers that name places in the store: the log's leaf indexes and tree
# sizes, an event's version. Stored as SQLite INTEGER / PostgreSQL BIGINT
# (at most 2**63 - 1), and answered in JSON, where only integers up to
# 2**53 - 1 are exact for every reader (I-JSON, RFC 7493). 2**53 - 1 entries
# is 285 years of a million events a second: no real ledger reaches it.
STORE_INTEGER_MAX = 2**63 - 1  # SQLite INTEGER, PostgreSQL BIGINT
JSON_INTEGER_MAX = 2**53 - 1  # I-JSON: exact in every JSON reader
LOG_SIZE_MAX = JSON_INTEGER_MAX  # a tree size, or the (exclusive) end of a range of leaves
LOG_INDEX_MAX = LOG_SIZE_MAX - 1  # a leaf index (below the largest size)
EVENT_VERSION_MAX = JSON_INTEGER_MAX  # events of one aggregate

REQUEST_BODY_BYTES_MAX = 64 * 1024  # one HTTP request body
# Request headers (defaults of the settings of the same names; docs/api.md).
HEADER_BYTES_MAX = 8 * 1024  # one header line: name and value
HEADERS_BYTES_MAX = 64 * 1024  # the whole request head: request line and every header
HEADERS_COUNT_MAX = 100  # header lines in one request
PAGE_SIZE_DEFAULT = 100  # rows in one page of a list
PAGE_SIZE_MAX = 1_000
VELOCITY_WINDOW_MINUTES_MAX = 7 * 24 * 60  # a sales-velocity window: at most a week
SCOPE_CHARS_MAX = 128  # an idempotency scope (the caller's identity)

GOOD_KINDS = ("collectible", "licence", "redemption-code", "ticket", "media", "software")

# Relations between limits, checked when the module loads (TigerBeetle style).
if AMOUNT_MAX * SALE_QUANTITY_MAX >= 2**53:
    raise AssertionError("a sale's total must stay inside the I-JSON integer range")
if LOG_SIZE_MAX + 1 > STORE_INTEGER_MAX or EVENT_VERSION_MAX + 1 > STORE_INTEGER_MAX:
    raise AssertionError("a log position or version (and the next one) must fit the store")
if HEADER_BYTES_MAX > HEADERS_BYTES_MAX:
    raise AssertionError("one header cannot be allowed more than the whole head")
if TIER_QUOTA_MAX * TIERS_MAX >= 2**53:
    raise AssertionError("supply counts must stay inside the I-JSON integer range")
