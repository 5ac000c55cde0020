"""RFC 9162 Merkle trees (SHA-256): tree hashes, proofs and their verification.

Pure functions over hashes; no storage, no I/O. Definitions, from RFC 9162
section 2.1 (identical to RFC 6962 section 2.1)::

    MTH([])   = SHA-256("")
    MTH([d])  = SHA-256(0x00 || d)                              leaf hash
    MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))     node hash

where ``k`` is the largest power of two smaller than ``n``.

Generation (:func:`root`, :func:`inclusion_proof`, :func:`consistency_proof`)
follows the RFC's recursive definitions over leaf ranges ``[lo, hi)``, but
never touches individual leaves: a range that is a *perfect, aligned* subtree
(its length ``2**level`` is a power of two and ``lo`` is a multiple of it) is
read from a :class:`SubtreeSource`; any other range is hashed from its RFC
split. Every range in the RFC recursion from ``[0, size)`` is either such a
subtree or splits into one on the left and a smaller range on the right, so a
root costs at most one source call per set bit of ``size`` and a proof
O(log² n) calls (in practice about 2·log n). A source that can read many
subtrees at once (a :class:`BulkSubtreeSource`, such as the log store) gets
one :meth:`~BulkSubtreeSource.subtrees` call per root or proof instead.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) is the
algorithm of RFC 9162 sections 2.1.3.2 and 2.1.4.2, plus the edge rules of
the transparency-dev/merkle test vectors: hashes must be 32 bytes, an index
must be below the size, no consistency proof exists from size 0, and equal
sizes need an empty proof and equal roots. Any failure raises
:class:`ProofError` (a ``ValueError``) saying why.

:class:`CompactRange` is the frontier of an append-only tree: the roots of
its O(log n) maximal perfect subtrees, enough to compute the root and to
append. Each append reports the perfect subtrees it completes, so a store can
persist every node a :class:`SubtreeSource` will ever be asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "BulkSubtreeSource",
    "CompactRange",
    "MemorySubtrees",
    "ProofError",
    "SubtreeSource",
    "consistency_proof",
    "inclusion_proof",
    "leaf_and_inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion",
    "subtrees_read",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in every leaf, node and root hash (SHA-256)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_HEX_DIGITS = "0123456789abcdef"


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf's data."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


_sha256 = hashlib.sha256

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""The root of the empty tree, ``SHA-256("")``."""


class ProofError(ValueError):
    """A proof that does not verify; the message says why."""


class SubtreeSource(Protocol):
    """Where generation reads hashes from."""

    def subtree(self, level: int, index: int) -> bytes:
        """The hash of the perfect, aligned subtree of ``2**level`` leaves.

        It starts at leaf ``index * 2**level``; level 0 gives leaf hashes.
        Callers only ask for subtrees wholly inside the tree size they work on.
        """
        ...


class BulkSubtreeSource(SubtreeSource, Protocol):
    """A source that reads many subtrees at once (one query instead of many)."""

    def subtrees(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        """The hash of each ``(level, index)`` subtree of ``keys`` (see ``subtree``);
        ``LookupError`` if one is missing. Keys may repeat."""
        ...


_Key = tuple[int, int]  # a subtree's (level, index)


# --- generation ----------------------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(lo: int, hi: int, source: SubtreeSource) -> bytes:
    """``MTH(D[lo:hi])`` for a non-empty range ``[lo, hi)``.

    While the range is not a perfect, aligned subtree, split it as the RFC
    does (``k`` leaves on the left, the rest on the right) and go right; the
    left parts of a range that starts on a multiple of its split are perfect
    and aligned, so they are single source calls. Then hash back up.
    """
    lefts: list[bytes] = []
    n = hi - lo
    while n & (n - 1) or lo % n:
        k = _split(n)
        lefts.append(_range_hash(lo, lo + k, source))
        lo += k
        n -= k
    level = n.bit_length() - 1
    result = source.subtree(level, lo >> level)
    for left in reversed(lefts):
        result = node_hash(left, result)
    return result


def _range_keys(lo: int, hi: int, keys: list[_Key]) -> None:
    """Append the subtrees ``_range_hash(lo, hi, ...)`` reads to ``keys``."""
    n = hi - lo
    while n & (n - 1) or lo % n:
        k = _split(n)
        _range_keys(lo, lo + k, keys)
        lo += k
        n -= k
    level = n.bit_length() - 1
    keys.append((level, lo >> level))


def _keys(ranges: Iterable[tuple[int, int]]) -> list[_Key]:
    keys: list[_Key] = []
    for lo, hi in ranges:
        _range_keys(lo, hi, keys)
    return keys


class _Read:
    """The subtrees a bulk source returned, as a source."""

    __slots__ = ("_nodes",)

    def __init__(self, nodes: Mapping[_Key, bytes]) -> None:
        self._nodes = nodes

    def subtree(self, level: int, index: int) -> bytes:
        try:
            return self._nodes[(level, index)]
        except KeyError:
            raise LookupError(f"no subtree at level {level} index {index}") from None


def _hashes(ranges: list[tuple[int, int]], source: SubtreeSource) -> list[bytes]:
    """``MTH`` of each range; a bulk source is asked once for every subtree."""
    bulk = getattr(source, "subtrees", None)
    if bulk is not None and ranges:
        source = _Read(bulk(_keys(ranges)))
    return [_range_hash(lo, hi, source) for lo, hi in ranges]


def _check_size(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def root(size: int, source: SubtreeSource) -> bytes:
    """``MTH`` of the first ``size`` leaves; :data:`EMPTY_ROOT` for size 0."""
    _check_size("size", size)
    if size == 0:
        return EMPTY_ROOT
    return _hashes([(0, size)], source)[0]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes are the audit path of ``index``, leaf upwards."""
    _check_size("size", size)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    # PATH(m, D[lo:hi]) = PATH(m, child containing m) : MTH(other child).
    # Walk down from the root; the siblings come out top first.
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, size: int, source: SubtreeSource) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves.

    RFC 9162 2.1.3.1 ``PATH(m, D[n])``: sibling hashes from the leaf upwards.
    Raises ``ValueError`` unless ``0 <= index < size``.
    """
    return _hashes(_inclusion_ranges(index, size), source)


def leaf_and_inclusion_proof(
    index: int, size: int, source: SubtreeSource
) -> tuple[bytes, list[bytes]]:
    """Leaf ``index``'s hash and :func:`inclusion_proof`, read together (a
    :class:`BulkSubtreeSource` is asked once for both)."""
    leaf, *path = _hashes([(index, index + 1), *_inclusion_ranges(index, size)], source)
    return leaf, path


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes are ``PROOF(old_size, D[new_size])``, in order."""
    _check_size("new_size", new_size)
    if old_size <= 0:
        raise ValueError(f"no consistency proof from tree size {old_size}")
    if old_size > new_size:
        raise ValueError(f"old size {old_size} is larger than new size {new_size}")
    # SUBPROOF(m, D[lo:hi], b):
    #   m == hi - lo: [] if b else [MTH(D[lo:hi])]
    #   m <= k:       SUBPROOF(m, D[lo:lo+k], b) : MTH(D[lo+k:hi])
    #   m > k:        SUBPROOF(m - k, D[lo+k:hi], False) : MTH(D[lo:lo+k])
    # with m counted from lo. Walk down; the trailing elements come out last first.
    tail: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            tail.append((lo + k, hi))
            hi = lo + k
        else:
            tail.append((lo, lo + k))
            lo += k
            m -= k
            whole = False
    ranges = [] if whole else [(lo, hi)]
    ranges.extend(reversed(tail))
    return ranges


def consistency_proof(old_size: int, new_size: int, source: SubtreeSource) -> list[bytes]:
    """The proof that the first ``old_size`` leaves are a prefix of ``new_size``.

    RFC 9162 2.1.4.1 ``PROOF(m, D[n])``. Empty when the sizes are equal.
    Raises ``ValueError`` for ``old_size == 0`` (nothing to prove) and for
    ``old_size > new_size``.
    """
    return _hashes(_consistency_ranges(old_size, new_size), source)


def subtrees_read(
    *,
    root_of: int | None = None,
    inclusion: tuple[int, int] | None = None,
    consistency: tuple[int, int] | None = None,
) -> list[tuple[int, int]]:
    """The ``(level, index)`` of every stored subtree that :func:`root`
    (``root_of`` leaves), :func:`leaf_and_inclusion_proof` (``(index, size)``)
    or :func:`consistency_proof` (``(old_size, new_size)``) reads: where to
    look when what they gave does not verify."""
    ranges: list[tuple[int, int]] = []
    if root_of:
        ranges.append((0, root_of))
    if inclusion is not None:
        index, size = inclusion
        ranges += [(index, index + 1), *_inclusion_ranges(index, size)]
    if consistency is not None:
        ranges += _consistency_ranges(*consistency)
    return list(dict.fromkeys(_keys(ranges)))


# --- verification --------------------------------------------------------------


def _check_hash(what: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray):
        raise ProofError(f"{what} is a {type(value).__name__}, not bytes")
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_proof(proof: Sequence[bytes]) -> None:
    for i, element in enumerate(proof):
        _check_hash(f"proof element {i}", element)


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProofError(f"{name} is not an integer: {value!r}")
        if value < 0:
            raise ProofError(f"{name} is negative: {value}")


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` gives leaf hash ``leaf`` at ``index`` of ``size``.

    RFC 9162 2.1.3.2 steps 1 to 5; raises :class:`ProofError` when the proof
    cannot be a path for that index and size (too long, too short, malformed).
    """
    _check_sizes(index=index, size=size)
    if index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf)
    _check_proof(proof)
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof is too short ({len(proof)} hashes)")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` is leaf ``index`` of the tree ``(size, root)``.

    Raises :class:`ProofError` unless it is.
    """
    computed = root_from_inclusion(leaf, index, size, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} gives root {computed.hex()}, "
            f"not {bytes(root).hex()}"
        )


def verify_consistency(  # noqa: C901, PLR0912 - RFC 9162 2.1.4.2 step by step, kept as written
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that tree ``(old_size, old_root)`` is a prefix of ``(new_size, new_root)``.

    RFC 9162 2.1.4.2. Raises :class:`ProofError` unless it is. There is no
    proof from size 0. Equal sizes need an empty proof and byte-equal roots
    (as in transparency-dev/merkle, the roots' length is then not checked:
    the claim holds for any two equal values).
    """
    _check_sizes(old_size=old_size, new_size=new_size)
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        if proof:
            raise ProofError(f"sizes are equal but the proof has {len(proof)} hashes")
        if old_root != new_root:
            raise ProofError(f"sizes are equal ({old_size}) but the roots differ")
        return
    if not proof:
        raise ProofError(f"empty consistency proof from {old_size} to {new_size}")
    _check_proof(proof)
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        _check_hash("old root", old_root)
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = bytes(path[0])
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof is too short ({len(proof)} hashes)")
    if fr != old_root:
        raise ProofError(
            f"consistency proof gives old root {fr.hex()}, not {bytes(old_root).hex()}"
        )
    if sr != new_root:
        raise ProofError(
            f"consistency proof gives new root {sr.hex()}, not {bytes(new_root).hex()}"
        )


# --- the frontier --------------------------------------------------------------


class CompactRange:
    """The roots of the maximal perfect subtrees covering leaves ``[0, size)``.

    One hash per set bit of ``size``, largest (leftmost) first: O(log n)
    memory for a tree of any size.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        hashes = [bytes(h) for h in hashes]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"compact range size must be a non-negative integer: {size!r}")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a compact range of size {size} has {size.bit_count()} hashes, not {len(hashes)}"
            )
        for i, h in enumerate(hashes):
            if len(h) != HASH_SIZE:
                raise ValueError(f"compact range hash {i} is {len(h)} bytes, not {HASH_SIZE}")
        self._size = size
        self._hashes = hashes

    @property
    def size(self) -> int:
        """Leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree roots, largest subtree first."""
        return tuple(self._hashes)

    def subtrees(self) -> list[tuple[int, int, bytes]]:
        """The ``(level, index, hash)`` of each subtree, largest first."""
        out: list[tuple[int, int, bytes]] = []
        start = 0
        for level in range(self._size.bit_length() - 1, -1, -1):
            if self._size >> level & 1:
                out.append((level, start >> level, self._hashes[len(out)]))
                start += 1 << level
        return out

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf *hash*; return the perfect subtrees this completes.

        ``(level, index, hash)``, level 0 (the leaf itself) first. Storing
        them all gives a :class:`SubtreeSource` for every size up to the new
        one. The list has one entry plus one per trailing set bit of the old
        size: amortised two per append.
        """
        if not isinstance(leaf, bytes | bytearray) or len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        index = self._size
        h = bytes(leaf)
        level = 0
        completed = [(0, index, h)]
        while index >> level & 1:
            h = node_hash(self._hashes.pop(), h)
            level += 1
            completed.append((level, index >> level, h))
        self._hashes.append(h)
        self._size += 1
        return completed

    def append_data(self, data: bytes) -> None:
        """Append the leaf whose data is ``data`` (hashed as :func:`leaf_hash`
        does), without reporting the subtrees it completes: the cheapest way
        to grow a tree whose roots are all one needs (an auditor's)."""
        self.append_leaf(_sha256(_LEAF_PREFIX + data).digest())

    def append_leaf(self, leaf: bytes) -> None:
        """:meth:`append` of a leaf hash known to be one (32 bytes), without
        reporting the subtrees it completes."""
        h = leaf
        hashes = self._hashes
        index = self._size
        while index & 1:
            h = _sha256(_NODE_PREFIX + hashes.pop() + h).digest()
            index >>= 1
        hashes.append(h)
        self._size += 1

    def append_leaf_completing(self, leaf: bytes) -> list[bytes]:
        """:meth:`append_leaf`, returning the hashes of the perfect subtrees
        it completes, level 0 (the leaf) first: the one at level ``L`` has
        index ``(size - 1) >> L``. :meth:`append`'s report, cheaper (an
        auditor comparing a whole stored tree calls it for every leaf)."""
        h = leaf
        hashes = self._hashes
        index = self._size
        completed = [h]
        while index & 1:
            h = _sha256(_NODE_PREFIX + hashes.pop() + h).digest()
            completed.append(h)
            index >>= 1
        hashes.append(h)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """The root of the tree of all leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r

    def copy(self) -> CompactRange:
        """An independent copy."""
        return CompactRange(self._size, self._hashes)

    def to_json(self) -> dict[str, Any]:
        """``{"size": n, "hashes": [hex, ...]}``, largest subtree first."""
        return {"size": self._size, "hashes": [h.hex() for h in self._hashes]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CompactRange:
        """The inverse of :meth:`to_json`; ``ValueError`` on anything else."""
        if not isinstance(d, dict) or set(d) != {"size", "hashes"}:
            raise ValueError("a compact range is an object with 'size' and 'hashes'")
        hashes = d["hashes"]
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise ValueError("compact range 'hashes' must be a list of hex strings")
        if any(len(h) != 2 * HASH_SIZE or h.strip(_HEX_DIGITS) for h in hashes):
            raise ValueError(f"compact range hashes must be {2 * HASH_SIZE} lowercase hex digits")
        return cls(d["size"], [bytes.fromhex(h) for h in hashes])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


class MemorySubtrees:
    """A :class:`SubtreeSource` in a dict, filled from :meth:`CompactRange.append`.

    Use::

        frontier, nodes = CompactRange(), MemorySubtrees()
        for data in entries:
            nodes.extend(frontier.append(leaf_hash(data)))
        proof = inclusion_proof(3, frontier.size, nodes)
    """

    def __init__(self, subtrees: Iterable[tuple[int, int, bytes]] = ()) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}
        self.extend(subtrees)

    def add(self, level: int, index: int, hash_: bytes) -> None:
        self._nodes[(level, index)] = hash_

    def extend(self, subtrees: Iterable[tuple[int, int, bytes]]) -> None:
        for level, index, h in subtrees:
            self._nodes[(level, index)] = h

    def subtree(self, level: int, index: int) -> bytes:
        try:
            return self._nodes[(level, index)]
        except KeyError:
            raise LookupError(f"no subtree at level {level} index {index}") from None

    def __len__(self) -> int:
        return len(self._nodes)
