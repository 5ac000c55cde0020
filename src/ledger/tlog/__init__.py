"""Transparency log: RFC 9162 Merkle trees (:mod:`ledger.tlog.merkle`) and friends."""

from __future__ import annotations

from ledger.tlog.c2sp import NoteError as NoteError
from ledger.tlog.checkpoint import Checkpoint as Checkpoint
from ledger.tlog.cosignature import cosign as cosign
from ledger.tlog.cosignature import verify_cosignature as verify_cosignature
from ledger.tlog.keys import NoteSignature as NoteSignature
from ledger.tlog.keys import Signer as Signer
from ledger.tlog.keys import Verifier as Verifier
from ledger.tlog.merkle import EMPTY_ROOT as EMPTY_ROOT
from ledger.tlog.merkle import HASH_SIZE as HASH_SIZE
from ledger.tlog.merkle import CompactRange as CompactRange
from ledger.tlog.merkle import MemorySubtrees as MemorySubtrees
from ledger.tlog.merkle import ProofError as ProofError
from ledger.tlog.merkle import SubtreeSource as SubtreeSource
from ledger.tlog.merkle import consistency_proof as consistency_proof
from ledger.tlog.merkle import inclusion_proof as inclusion_proof
from ledger.tlog.merkle import leaf_hash as leaf_hash
from ledger.tlog.merkle import node_hash as node_hash
from ledger.tlog.merkle import root_from_inclusion as root_from_inclusion
from ledger.tlog.merkle import verify_consistency as verify_consistency
from ledger.tlog.merkle import verify_inclusion as verify_inclusion
from ledger.tlog.policy import Policy as Policy
from ledger.tlog.policy import PolicyError as PolicyError
from ledger.tlog.policy import PolicyResult as PolicyResult
from ledger.tlog.policy import parse_policy as parse_policy
from ledger.tlog.proof import TlogProof as TlogProof
from ledger.tlog.signed_note import Note as Note
from ledger.tlog.signed_note import open_note as open_note
from ledger.tlog.signed_note import parse_note as parse_note
from ledger.tlog.signed_note import sign_note as sign_note
