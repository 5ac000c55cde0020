"""Verifying a large store on two processors.

Most of what the verifier does per event depends on that event alone: that
its stored bytes are canonical JSON with the right members of the right types
(:func:`~ledger.verify.fastpath.clean_state`), its record's SHA-256 (the
chain's event hash) and its leaf hash in the global log. Only the chain and
the rules need the events before it. So a second process, the
:class:`Prechecker`, takes pages of rows as the reader reads them and
returns, for each row, whether it is clean, its event hash and its leaf hash;
the verifier, one page behind, then only parses each clean row and applies
the rules (:meth:`~ledger.verify.verifier.Verifier.feed_checked`), and the
log auditor folds in the leaf.

The second process checks the very bytes the first one verifies (they are
sent to it, not read again), and what it says is only a shortcut: any row it
does not vouch for -- or every row, if it stops answering -- goes through the
verifier's own path, which finds the same. Reports do not depend on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import queue
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ledger.verify.codec import splice
from ledger.verify.fastpath import clean_state, own_id_ok, record_bytes
from ledger.verify.invariant import VerifierInvariantError

CLEAN = 1  # the row passed clean_state(); its event hash follows
LEAF = 2  # its leaf hash follows
ID_OK = 4  # a creation event whose aggregate id is derived right (own_id_ok)
HASH_SIZE = 32
_ZERO = bytes(HASH_SIZE)
_LEAF_PREFIX = b"\x00"
_sha256 = hashlib.sha256

Row = tuple[Any, Any, Any, Any, Any]  # position, aggregate id, version, type, state
PAGE = 2_000
IN_FLIGHT = 2  # pages sent ahead of the one being verified
CHILD_MEMORY = 30 * 1024 * 1024  # what the child takes, at most: its interpreter and pages


def check_page(rows: Sequence[Row]) -> bytes:
    """What a row says of itself, for each row: one byte of flags per row,
    then the event hashes (of clean rows; zeros otherwise), then the leaf
    hashes (zeros where the record cannot be spliced)."""
    flags = bytearray(len(rows))
    hashes: list[bytes] = []
    leaves: list[bytes] = []
    for i, (_, aggregate_id, version, event_type, state) in enumerate(rows):
        value = clean_state(aggregate_id, version, event_type, state)
        if value is not None:
            record = record_bytes(aggregate_id, version, event_type, state)
            flags[i] = (
                CLEAN
                | LEAF
                | (ID_OK if own_id_ok(aggregate_id, event_type, value["payload"]) else 0)
            )
            hashes.append(_sha256(record).digest())
            leaves.append(_sha256(_LEAF_PREFIX + record).digest())
            continue
        hashes.append(_ZERO)
        try:
            record = splice(aggregate_id, version, event_type, state)
        except Exception:  # the verifier's own splice will say what
            leaves.append(_ZERO)
            continue
        flags[i] = LEAF
        leaves.append(_sha256(_LEAF_PREFIX + record).digest())
    return bytes(flags) + b"".join(hashes) + b"".join(leaves)


def _serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The child's loop: read a page, answer, until an empty frame or EOF."""
    while True:
        frame = _read_frame(source)
        if not frame:
            return
        # Pages only ever come from this process's parent, marshalled.
        _write_frame(sink, check_page(marshal.loads(frame)))  # noqa: S302


def _write_frame(sink: IO[bytes], data: bytes) -> None:
    sink.write(_LENGTH.pack(len(data)))
    sink.write(data)
    sink.flush()


def _read_frame(source: IO[bytes]) -> bytes:
    """One frame (b"" at the end of the stream)."""
    head = source.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return b""
    (size,) = _LENGTH.unpack(head)
    data = source.read(size)
    return data if len(data) == size else b""


_LENGTH = struct.Struct("<Q")
_CHILD = (
    "import sys; from ledger.tuning import tune_gc; tune_gc(); "
    "from ledger.verify.pipeline import _serve; _serve(sys.stdin.buffer, sys.stdout.buffer)"
)


class Prechecker:
    """A child process (this interpreter, :data:`_CHILD`) running
    :func:`check_page` on the pages sent to it, in order, over its standard
    input and output. If it fails, :meth:`result` says None and it is not
    used again."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])  # where ledger is imported from
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        self.broken = False
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our own code
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        # Pages are written by a thread: while the child answers one page
        # (and waits for it to be read), the next can be on its way.
        self._outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=IN_FLIGHT)
        self._writer = threading.Thread(
            target=self._write, name="ledger-verify-precheck", daemon=True
        )
        self._writer.start()

    def _write(self) -> None:
        sink = self._process.stdin
        if sink is None:
            raise VerifierInvariantError("sink unset")
        try:
            while (frame := self._outbox.get()) is not None:
                _write_frame(sink, frame)
            _write_frame(sink, b"")
            sink.close()
        except (OSError, ValueError):  # the child is gone: result() will say so
            self.broken = True

    def submit(self, page: list[Row]) -> bool:
        if self.broken:
            return False
        try:
            frame = marshal.dumps(page)
        except ValueError:  # a value marshal cannot carry: checked here instead
            return False
        self._outbox.put(frame)
        return True

    def result(self) -> bytes | None:
        if self.broken:
            return None
        source = self._process.stdout
        if source is None:
            raise VerifierInvariantError("source unset")
        try:
            found = _read_frame(source)
        except (OSError, ValueError):
            found = b""
        if not found:
            self.broken = True
            return None
        return found

    def close(self) -> None:
        self.broken = True
        with contextlib.suppress(queue.Full):
            self._outbox.put_nowait(None)
        if self._process.stdout is not None:
            self._process.stdout.close()
        try:
            self._process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5.0)
        self._writer.join(timeout=5.0)

    def __enter__(self) -> Prechecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pages(
        self, rows: Iterable[Row], errors: tuple[type[BaseException], ...], page_size: int = PAGE
    ) -> Iterator[tuple[list[Row], bytes | None]]:
        """``rows`` in order, a page at a time, each page with what this
        process found of it (see :func:`check_page`; None if it has not
        said). Pages are sent ahead; an error of ``errors`` raised by
        ``rows`` is raised again after every row read before it."""
        source = iter(rows)
        in_flight: deque[tuple[list[Row], bool]] = deque()
        error: BaseException | None = None
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < IN_FLIGHT:
                page: list[Row] = []
                try:
                    while len(page) < page_size:
                        page.append(next(source))
                except StopIteration:
                    exhausted = True
                except errors as raised:
                    exhausted, error = True, raised
                if page:
                    in_flight.append((page, self.submit(page)))
            if not in_flight:
                break
            page, sent = in_flight.popleft()
            result = self.result() if sent else None
            if result is not None and len(result) != len(page) * (1 + 2 * HASH_SIZE):
                result = None
            yield page, result
        if error is not None:
            raise error
