"""Where the verifier keeps what it knows of each aggregate: in memory up to
a budget, on disk beyond it.

A log of ten million events has some six million aggregates (every command
record is one, every unit another), and the verifier must remember each
one's chain head -- a later event could name it -- and the rule state of
units and allowances. So a :class:`StateTable` holds one compact ``bytes``
value per aggregate id; when their estimated size passes the budget, the
oldest quarter (command records and units long settled, mostly) moves to a
temporary file, in sorted runs, with Bloom filters in memory saying which
ids may be there, so that the common question -- "is this a new
aggregate?" -- rarely reaches the disk. A value asked for again comes back
into memory. Nothing is ever forgotten: what the verifier finds does not
depend on the budget, only its speed does.

The budget counts estimated bytes of state. The process holds more: the
interpreter and its modules (about 35 MB), the Bloom filters (8 MB and a
byte per entry on disk), and what the allocator keeps as entries come and go
(measured: the peak RSS of verifying 10 million events is about 1.4 times
the budget plus 45 MB; 1.2 times it plus 35 MB while nothing is spilled).
"""

from __future__ import annotations

import os
import struct
import tempfile
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate

# What one entry costs besides its value's bytes: the key (16 bytes in a
# bytes object: 49), the dict slot, the value's object header.
ENTRY_OVERHEAD = 140
DEFAULT_BUDGET = 150 * 1024 * 1024
GENERATIONS = 4  # in memory: a spill moves a quarter of the budget
_BLOOM_BITS = 1 << 26  # 8 MB: about 1.4 % false positives at 6 million ids
_BLOOM_MASK = _BLOOM_BITS - 1
_WORD = (1 << 64) - 1
_RUN = 65_536  # entries in a run at most: sorting a spill costs little memory
_RUN_BLOOM_BITS = 8  # per entry, in a run's own filter
_SPARSE = 256  # one key in memory per this many in a run
_CHUNK = 1_024  # values per write
Key = bytes | str  # an aggregate's id: a UUID's 16 bytes, or any other id as it is
_TWO_ENDS = struct.Struct("=II")
_ONE_END = struct.Struct("=I")
if array("I").itemsize != _ONE_END.size:  # pragma: no cover - every platform we run on
    raise ImportError("array('I') is not 4 bytes here")


class StateTable:
    """Aggregate key -> its state's bytes, spilling to disk past ``budget``
    (estimated bytes held in memory).

    In memory, :data:`GENERATIONS` dicts, oldest first: new and rewritten
    entries go to the youngest, which gives way to a new one past its share
    of the budget; past the budget, the oldest goes to disk whole. (An
    entry rewritten moves to the young one, so what is in use stays; and
    no dict is scanned but once, as it goes.)"""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self._young: dict[Key, bytes] = {}
        self._held_young = 0
        self._older: list[dict[Key, bytes]] = []  # oldest first
        self._held_older: list[int] = []
        self._budget = budget
        self._count = 0
        self._cold: _Cold | None = None

    def __len__(self) -> int:
        """Ids ever added (in memory or on disk)."""
        return self._count

    @property
    def held(self) -> int:
        """Estimated bytes held in memory."""
        return self._held_young + sum(self._held_older)

    @property
    def spilled(self) -> int:
        """Entries moved to disk so far (counting re-spills)."""
        return 0 if self._cold is None else self._cold.written

    def get(self, key: Key) -> bytes | None:
        value = self._young.get(key)
        if value is None:
            for generation in reversed(self._older):
                value = generation.get(key)
                if value is not None:
                    return value
            if self._cold is not None:
                value = self._cold.get(key)
                if value is not None:
                    self._young[key] = value
                    self._held_young += len(value) + ENTRY_OVERHEAD
                    self._trim()
        return value

    def add(self, key: Key, value: bytes) -> None:
        """A key :meth:`get` has just found nowhere."""
        self._count += 1
        self._young[key] = value
        self._held_young += len(value) + ENTRY_OVERHEAD
        self._trim()

    def put(self, key: Key, value: bytes) -> None:
        """A new value for a key added before."""
        old = self._young.get(key)
        if old is not None:
            self._held_young += len(value) - len(old)
        else:
            self._held_young += len(value) + ENTRY_OVERHEAD
            for i in range(len(self._older) - 1, -1, -1):
                moved = self._older[i].pop(key, None)
                if moved is not None:
                    self._held_older[i] -= len(moved) + ENTRY_OVERHEAD
                    break
        self._young[key] = value  # (a copy on disk, if any, is older)
        self._trim()

    def _trim(self) -> None:
        if self._held_young > self._budget // GENERATIONS:
            self._older.append(self._young)
            self._held_older.append(self._held_young)
            self._young, self._held_young = {}, 0
        while self._older and self._held_young + sum(self._held_older) > self._budget:
            self._spill()

    def _spill(self) -> None:
        """The oldest generation to disk."""
        oldest = self._older.pop(0)
        self._held_older.pop(0)
        if oldest:
            if self._cold is None:
                self._cold = _Cold()
            self._cold.put_many(oldest.items())

    def close(self) -> None:
        if self._cold is not None:
            self._cold.close()
            self._cold = None
        self._young, self._older, self._held_older = {}, [], []
        self._held_young = 0


class _Cold:
    """The entries on disk: sorted runs appended to one temporary file
    (unlinked at once: gone when closed, or when the process ends).

    A run is the entries of one spill, sorted by key: the keys (16 bytes
    each, the UUID's), the end offset of each value, the values. In memory
    each run keeps every :data:`_SPARSE`-th key and a Bloom filter, and one
    more Bloom filter covers all runs: most keys asked for (new aggregates)
    stop there. Runs are searched newest first (an entry spilled again is in
    a newer run). String keys -- ids that are not UUIDs, which only a
    damaged log has -- stay in memory here."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="ledger-verify-")  # noqa: SIM115 - kept open
        self._fd = self._file.fileno()
        self._end = 0
        self._runs: list[_Run] = []  # oldest first
        self._bits = bytearray(_BLOOM_BITS // 8)
        self._odd: dict[Key, bytes] = {}
        self.written = 0

    def put_many(self, items: Iterable[tuple[Key, bytes]]) -> None:
        entries: list[tuple[bytes, bytes]] = []
        for key, value in items:
            if type(key) is not bytes:
                self._odd[key] = value
                continue
            entries.append((key, value))
            if len(entries) == _RUN:
                self._write(entries)
                entries = []
        if entries:
            self._write(entries)

    def _write(self, entries: list[tuple[bytes, bytes]]) -> None:
        entries.sort()  # by key: keys are unique, so values are never compared
        n = len(entries)
        keys = b"".join(e[0] for e in entries)
        ends = array("I", accumulate(len(e[1]) for e in entries))
        if ends and ends[-1] >= 2**32 - 1:  # pragma: no cover - a run is far smaller
            raise OverflowError("a run of verifier state too large")
        bits = self._bits
        bloom = bytearray(max(8, n * _RUN_BLOOM_BITS // 8))
        size = len(bloom) * 8
        for key, _ in entries:
            h = hash(key) & _WORD
            _set(bits, _BLOOM_MASK, h)
            _set_in(bloom, size, h)
        base = self._end
        offset = self._write_all(keys, base)
        offset = self._write_all(ends.tobytes(), offset)
        for start in range(0, n, _CHUNK):  # (not joined in one copy: a run is megabytes)
            offset = self._write_all(
                b"".join(e[1] for e in entries[start : start + _CHUNK]), offset
            )
        self._end = offset
        sparse = [keys[i : i + 16] for i in range(0, len(keys), 16 * _SPARSE)]
        self._runs.append(_Run(base, n, sparse, bloom, size))
        self.written += n

    def _write_all(self, data: bytes, offset: int) -> int:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written
        return offset

    def get(self, key: Key) -> bytes | None:
        if type(key) is not bytes:
            return self._odd.get(key)
        h = hash(key) & _WORD
        if not _test(self._bits, _BLOOM_MASK, h):
            return None
        for run in reversed(self._runs):
            if _test_in(run.bloom, run.bloom_size, h):
                found = run.find(self._fd, key)
                if found is not None:
                    return found
        return None

    def close(self) -> None:
        self._file.close()
        self._runs = []
        self._odd = {}


class _Run:
    __slots__ = ("base", "bloom", "bloom_size", "count", "sparse")

    def __init__(
        self, base: int, count: int, sparse: list[bytes], bloom: bytearray, bloom_size: int
    ) -> None:
        self.base, self.count, self.sparse = base, count, sparse
        self.bloom, self.bloom_size = bloom, bloom_size

    def find(self, fd: int, key: bytes) -> bytes | None:
        block = bisect_right(self.sparse, key) - 1
        if block < 0:
            return None
        first = block * _SPARSE
        many = min(_SPARSE, self.count - first)
        keys = os.pread(fd, many * 16, self.base + first * 16)
        at = keys.find(key)
        while at > 0 and at % 16:
            at = keys.find(key, at + 1)
        if at < 0:
            return None
        i = first + at // 16
        ends_at = self.base + self.count * 16
        values_at = ends_at + self.count * 4
        if i:
            start, end = _TWO_ENDS.unpack(os.pread(fd, 8, ends_at + (i - 1) * 4))
        else:
            start, (end,) = 0, _ONE_END.unpack(os.pread(fd, 4, ends_at))
        return os.pread(fd, end - start, values_at + start)


# Bloom filters: 3 probes, by double hashing of a key's 64-bit hash.
def _set(bits: bytearray, mask: int, h: int) -> None:
    step = (h >> 32) | 1
    bit = h & mask
    bits[bit >> 3] |= 1 << (bit & 7)
    bit = (h + step) & mask
    bits[bit >> 3] |= 1 << (bit & 7)
    bit = (h + 2 * step) & mask
    bits[bit >> 3] |= 1 << (bit & 7)


def _test(bits: bytearray, mask: int, h: int) -> bool:
    step = (h >> 32) | 1
    bit = h & mask
    if not bits[bit >> 3] & (1 << (bit & 7)):
        return False
    bit = (h + step) & mask
    if not bits[bit >> 3] & (1 << (bit & 7)):
        return False
    bit = (h + 2 * step) & mask
    return bool(bits[bit >> 3] & (1 << (bit & 7)))


def _set_in(bits: bytearray, size: int, h: int) -> None:
    step = (h >> 32) | 1
    bit = h % size
    bits[bit >> 3] |= 1 << (bit & 7)
    bit = (h + step) % size
    bits[bit >> 3] |= 1 << (bit & 7)
    bit = (h + 2 * step) % size
    bits[bit >> 3] |= 1 << (bit & 7)


def _test_in(bits: bytearray, size: int, h: int) -> bool:
    step = (h >> 32) | 1
    bit = h % size
    if not bits[bit >> 3] & (1 << (bit & 7)):
        return False
    bit = (h + step) % size
    if not bits[bit >> 3] & (1 << (bit & 7)):
        return False
    bit = (h + 2 * step) % size
    return bool(bits[bit >> 3] & (1 << (bit & 7)))
