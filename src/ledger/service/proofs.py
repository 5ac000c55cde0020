"""Proofs the server sends, each checked first against its own signed root.

Inclusion and consistency proofs are built from the stored tree
(``tlog_nodes``); one damaged node there gives proofs that fail for every
leaf beneath it, while the events and checkpoints are intact. So before a
proof leaves the server -- over the log API, in a provenance bundle, or
pushed to a verifier -- it is verified with :mod:`ledger.tlog.merkle`
against the root in the latest signed checkpoint's note. A proof for an
earlier size is verified against the root of that size, and that root
against the signed one by a consistency proof (which the stored tree cannot
forge either). A proof that does not verify is never sent: it raises
:class:`ProofStoreError`, and an ERROR names the stored node that disagrees
with what lies beneath it (its children, or at level 0 the event's own leaf
hash), so that operators know the proof store is damaged; ``ledger verify
--db`` lists every such row.

The cost is the verification itself: a hash per proof element (about 20
for a million leaves) and, once per checkpoint, parsing its note.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.domain.model import record_bytes
from ledger.store.eventstore import EventStore
from ledger.store.logstore import LogStore, StoredCheckpoint
from ledger.tlog import merkle
from ledger.tlog.c2sp import NoteError
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.signed_note import parse_note

logger = logging.getLogger("ledger.proofs")
_SIGNED_REMEMBERED = 64


class ProofStoreError(RuntimeError):
    """A proof built from the stored tree does not verify against the log's
    own signed root: the proof store is damaged. ``suspects`` names the
    stored rows found to disagree with what lies beneath them."""

    def __init__(self, message: str, suspects: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.suspects = list(suspects)


@dataclass(frozen=True, slots=True)
class Inclusion:
    index: int
    size: int
    leaf: bytes
    proof: list[bytes]
    root: bytes


@dataclass(frozen=True, slots=True)
class Consistency:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: list[bytes]


class CheckedProofs:
    """Inclusion and consistency proofs from ``log``, verified before they
    are returned (thread-safe: the server's request threads share one)."""

    def __init__(self, log: LogStore, store: EventStore) -> None:
        self._log = log
        self._store = store
        self._signed: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def signed_root(self, checkpoint: StoredCheckpoint) -> bytes:
        """The root the checkpoint's note signs (checked against its row)."""
        with self._lock:
            found = self._signed.get(checkpoint.size)
        if found is not None:
            return found
        where = f"tlog_checkpoints row of size {checkpoint.size}"
        try:
            signed = Checkpoint.parse(parse_note(checkpoint.note).text)
        except NoteError as error:
            raise self.damaged(f"{where}: the note cannot be read ({error})") from None
        if signed.size != checkpoint.size or signed.root != checkpoint.root:
            raise self.damaged(f"{where} differs from its signed note")
        with self._lock:
            self._signed[checkpoint.size] = signed.root
            while len(self._signed) > _SIGNED_REMEMBERED:
                self._signed.popitem(last=False)
        return signed.root

    def inclusion(
        self, index: int, size: int, signed: StoredCheckpoint, *, leaf: bytes | None = None
    ) -> Inclusion:
        """Leaf ``index``'s hash and inclusion proof in the tree of ``size``
        leaves, and that tree's root, checked against ``signed`` (a signed
        checkpoint of ``size`` or more leaves). ``leaf``: the leaf hash the
        caller recomputed from the event's record, which the stored one must
        equal. :class:`ProofStoreError` if anything does not verify."""
        signed_root = self.signed_root(signed)
        try:
            stored_leaf, proof = merkle.leaf_and_inclusion_proof(index, size, self._log)
            root = signed_root if size == signed.size else self._log.root(size)
        except LookupError as error:  # a node the tree of that size must have
            raise self.damaged(
                f"the inclusion proof of leaf {index} in the tree of size "
                f"{size} cannot be built, a stored node is missing ({error})",
                merkle.subtrees_read(root_of=size, inclusion=(index, size)),
            ) from None
        try:
            if leaf is not None and leaf != stored_leaf:
                raise merkle.ProofError(
                    f"the stored leaf hash {stored_leaf.hex()} is not the event's "
                    f"{leaf.hex()}: tlog_leaves row {index} names another event, or the "
                    "hash is damaged"
                )
            merkle.verify_inclusion(stored_leaf, index, size, proof, root)
            if size != signed.size:
                self._verify_consistency(size, signed.size, root, signed_root)
        except merkle.ProofError as error:
            keys = merkle.subtrees_read(inclusion=(index, size))
            if size != signed.size:
                keys += merkle.subtrees_read(root_of=size, consistency=(size, signed.size))
            raise self.damaged(
                f"the inclusion proof of leaf {index} in the tree of size {size} does not "
                f"verify against the signed root of size {signed.size}: {error}",
                keys,
            ) from None
        return Inclusion(index, size, stored_leaf, proof, root)

    def consistency(self, old_size: int, new_size: int, signed: StoredCheckpoint) -> Consistency:
        """The proof that the tree of ``old_size`` leaves is a prefix of that
        of ``new_size``, with both roots, checked against ``signed`` (a signed
        checkpoint of ``new_size`` or more leaves)."""
        signed_root = self.signed_root(signed)
        try:
            proof = merkle.consistency_proof(old_size, new_size, self._log)
            old_root = self._log.root(old_size)
            new_root = signed_root if new_size == signed.size else self._log.root(new_size)
        except LookupError as error:  # a node the tree of that size must have
            raise self.damaged(
                f"the consistency proof from size {old_size} to {new_size} "
                f"cannot be built, a stored node is missing ({error})",
                merkle.subtrees_read(root_of=new_size, consistency=(old_size, new_size)),
            ) from None
        try:
            merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
            if new_size != signed.size:
                self._verify_consistency(new_size, signed.size, new_root, signed_root)
        except merkle.ProofError as error:
            keys = merkle.subtrees_read(root_of=old_size, consistency=(old_size, new_size))
            if new_size != signed.size:
                keys += merkle.subtrees_read(root_of=new_size, consistency=(new_size, signed.size))
            raise self.damaged(
                f"the consistency proof from size {old_size} to {new_size} does not verify "
                f"against the signed root of size {signed.size}: {error}",
                keys,
            ) from None
        return Consistency(old_size, new_size, old_root, new_root, proof)

    def _verify_consistency(
        self, size: int, signed_size: int, root: bytes, signed_root: bytes
    ) -> None:
        try:
            proof = merkle.consistency_proof(size, signed_size, self._log)
        except LookupError as error:
            raise merkle.ProofError(f"a stored node is missing: {error}") from None
        merkle.verify_consistency(size, signed_size, root, signed_root, proof)

    # -- when a proof does not verify -----------------------------------------
    def damaged(self, message: str, keys: Sequence[tuple[int, int]] = ()) -> ProofStoreError:
        """Log the damage (naming the stored nodes that disagree with what
        lies beneath them, among ``keys``) and return the error to raise."""
        suspects: list[str] = []
        try:
            for level, index in dict.fromkeys(keys):
                found = self._suspect(level, index)
                if found is not None and found not in suspects:
                    suspects.append(found)
        except Exception:  # the diagnosis must not hide the damage it looks for
            logger.exception("locating the damaged node failed")
        named = (
            "; ".join(suspects)
            if suspects
            else ("no single stored node found to disagree with what lies beneath it")
        )
        logger.error(
            "proof store damaged: %s. Not served. %s. Run `ledger verify --db` to "
            "list every damaged row.",
            message,
            named,
        )
        return ProofStoreError(message, suspects)

    def _suspect(self, level: int, index: int) -> str | None:
        """The stored node at or beneath ``(level, index)`` that disagrees
        with what lies beneath it, if this one does (one damaged node: the
        path down to it)."""
        where = f"tlog_nodes level {level} index {index}"
        try:
            stored = self._log.subtrees([(level, index)])[(level, index)]
        except LookupError:
            return f"{where} is missing"
        if level == 0:
            expected = self._event_leaf(index)
            if expected is None or expected == stored:
                return None
            return (
                f"{where} (leaf {index}) holds {stored.hex()}, the event's leaf hash "
                f"is {expected.hex()}"
            )
        children = [(level - 1, 2 * index), (level - 1, 2 * index + 1)]
        try:
            below = self._log.subtrees(children)
        except LookupError:
            return f"{where}: a child is missing"
        expected = merkle.node_hash(below[children[0]], below[children[1]])
        if expected == stored:
            return None
        for child_level, child_index in children:
            deeper = self._suspect(child_level, child_index)
            if deeper is not None:
                return deeper
        first = index << level
        return (
            f"{where} (leaves {first}..{first + (1 << level) - 1}) holds {stored.hex()}, "
            f"its children hash to {expected.hex()}"
        )

    def _event_leaf(self, index: int) -> bytes | None:
        """Leaf ``index``'s hash recomputed from its event (None if unknown)."""
        rows = self._log.stored_leaves(index - 1 if index else None, 1)
        if not rows or rows[0][0] != index:
            return None
        position = int(rows[0][1])
        found = self._store.recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position:
            return None
        event = found[0]
        return merkle.leaf_hash(
            record_bytes(
                str(event.originator_id), event.originator_version, event.topic, bytes(event.state)
            )
        )
