"""Produce ``rfc9162.json``: roots and proofs of small trees, from the reference.

The reference is the RFC 9162 section 2.1 transcription in
``tests/unit/test_tlog_merkle.py`` (``ref_mth``, ``ref_path``, ``ref_proof``),
which works on leaf data and never uses ``ledger.tlog``. Run once, by hand,
from the repository root::

    python tests/golden/merkle/generate.py

Never regenerate it to make a test pass: the test pins the file's SHA-256.
The file holds, for the leaves given (hex data, not hashes): the root of
every size 0..16, the inclusion proof of every leaf of every size 1..16, and
the consistency proof of every pair 1 <= old_size <= new_size <= 16.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.unit.test_tlog_merkle import ref_mth, ref_path, ref_proof

OUT = Path(__file__).with_name("rfc9162.json")
SIZE = 16
LEAVES = [b"", b"\x00", b"\x01", b"\x00" * 32, b"\x01" * 64] + [
    b"golden leaf %d" % i for i in range(5, SIZE)
]


def main() -> None:
    out = {
        "generate": "python tests/golden/merkle/generate.py (RFC 9162 2.1 reference in "
        "tests/unit/test_tlog_merkle.py); hashes and leaf data in hex",
        "leaves": [leaf.hex() for leaf in LEAVES],
        "roots": [ref_mth(LEAVES[:n]).hex() for n in range(SIZE + 1)],
        "inclusion": [
            {"index": m, "size": n, "proof": [h.hex() for h in ref_path(m, LEAVES[:n])]}
            for n in range(1, SIZE + 1)
            for m in range(n)
        ],
        "consistency": [
            {"old_size": m, "new_size": n, "proof": [h.hex() for h in ref_proof(m, LEAVES[:n])]}
            for n in range(1, SIZE + 1)
            for m in range(1, n + 1)
        ],
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{OUT}: {len(out['inclusion'])} inclusion, {len(out['consistency'])} consistency")


if __name__ == "__main__":
    main()
