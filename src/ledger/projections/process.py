"""The views applied in a process of their own.

In ``ledger serve`` the views' runner shares one interpreter -- one GIL --
with the HTTP server and the writers. Under a flash sale that thread gets a
small share of it, and every database call it makes waits again for the GIL
on its way back, so the views fall hundreds of milliseconds behind the
sales (docs/benchmarks.md). A :class:`ProcessRunner` is the same runner --
same loop, same lag figures, same listeners, same ``wait_for`` -- whose
batches are applied by a child process (``python -m
ledger.projections.process``) with its own connection to the store: the
server's thread only asks for the next batch and waits, without the GIL,
for what it changed.

The child is started on the first batch and again after it dies (the batch
it was applying then either committed or did not: the views' position in
the database says which, so nothing is applied twice or lost). Each
request is a frame on its standard input: the batch size; each answer a
frame on its standard output: ``marshal`` of (``"ok"``, the changes or
None, the views' position as last read) or (``"error"``, a message, the
position), or (``"unavailable"``, the reason, the position) when the
database cannot be reached. The first frame carries the database URL and
the band policy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import marshal
import os
import signal
import struct
import subprocess
import sys
import threading
from typing import IO, Any

from ledger.domain.errors import InvariantError
from ledger.jsonlog import json_handler, quiet_lookups
from ledger.projections.bands import BandPolicy
from ledger.projections.projector import Changes
from ledger.projections.runner import ProjectionRunner, now_text
from ledger.projections.store import ProjectionStore
from ledger.store.availability import DatabaseUnavailableError, unavailable_reason
from ledger.store.database import DatabaseURL
from ledger.tuning import tune_gc

logger = logging.getLogger("ledger.projections")
_LENGTH = struct.Struct(">I")
STOP_SECONDS = 10.0


class ViewsProcessError(RuntimeError):
    """The views' process failed to apply a batch, or stopped."""


def _write(sink: IO[bytes], payload: bytes) -> None:
    sink.write(_LENGTH.pack(len(payload)) + payload)
    sink.flush()


def _read(source: IO[bytes]) -> bytes | None:
    """The next frame, or None at the end of the stream."""
    head = source.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    payload = source.read(length)
    return payload if len(payload) == length else None


class ProcessRunner(ProjectionRunner):
    """A :class:`ProjectionRunner` whose batches a child process applies.

    ``store`` is this process's view store (for positions and status);
    ``url`` and ``bands`` are what the child opens its own with."""

    def __init__(
        self,
        store: ProjectionStore,
        url: DatabaseURL,
        *,
        bands: BandPolicy | None = None,
        json_logs: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(store, **options)
        self._json_logs = json_logs  # the child logs JSON lines, as the server does
        self._url = url
        self._bands = bands or BandPolicy()
        self._child: subprocess.Popen[bytes] | None = None
        self._child_lock = threading.Lock()

    def _apply_next(self) -> tuple[Changes | None, int]:
        with self._child_lock:
            child = self._child if self._child is not None else self._spawn()
            if child.stdin is None or child.stdout is None:
                raise InvariantError("child.stdin, child.stdout unset")
            try:
                _write(child.stdin, _LENGTH.pack(self.batch_events))
                reply = _read(child.stdout)
            except (OSError, ValueError):
                reply = None
            if reply is None:
                self._close_child()
                raise ViewsProcessError("the views process stopped; starting another")
        status, body, seen = marshal.loads(reply)  # noqa: S302 - our own child's answer
        if status == "unavailable":
            raise DatabaseUnavailableError(body)
        if status != "ok":
            raise ViewsProcessError(f"the views process could not apply a batch: {body}")
        if body is None:
            return None, int(seen)
        events, position, first_at, last_at, goods = body
        return Changes(
            events=events,
            position=position,
            first_event_at=first_at,
            last_event_at=last_at,
            goods=set(goods),
        ), int(seen)

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "ledger.projections.process"]
        child = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            command + (["--json-logs"] if self._json_logs else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        if child.stdin is None:
            raise InvariantError("child.stdin unset")
        opening = json.dumps(
            {"url": dataclasses.asdict(self._url), "bands": dataclasses.asdict(self._bands)}
        ).encode()
        try:
            _write(child.stdin, opening)
        except OSError:
            child.kill()
            child.wait()
            raise
        self._child = child
        return child

    def _close_child(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is None:
            raise InvariantError("child.stdin unset")
        with contextlib.suppress(OSError):
            child.stdin.close()  # the child's signal to stop
        try:
            child.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()

    def stop(self) -> None:
        super().stop()
        with self._child_lock:
            self._close_child()


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The child: open the store named in the first frame, then apply a
    batch for each request until the parent closes the stream."""
    # Imported here: the parent (the server) has these loaded anyway.
    from ledger.store.eventstore import EventStore  # noqa: PLC0415

    opening = _read(source)
    if opening is None:
        return
    settings = json.loads(opening)
    events = EventStore(DatabaseURL(**settings["url"]))
    try:
        store = ProjectionStore(
            events.recorder, bands=BandPolicy(**settings["bands"]), create=False
        )
        while (request := _read(source)) is not None:
            (limit,) = _LENGTH.unpack(request)
            reply: tuple[Any, ...]
            try:
                changes = store.apply_next(now_text, limit=limit)
                body = (
                    None
                    if changes is None
                    else (
                        changes.events,
                        changes.position,
                        changes.first_event_at,
                        changes.last_event_at,
                        sorted(changes.goods),
                    )
                )
                reply = ("ok", body, store.seen_position)
            except Exception as error:  # reported to the parent, which retries
                reason = unavailable_reason(error)
                if reason is not None:  # the parent says so, once per outage
                    reply = ("unavailable", reason, store.seen_position)
                else:
                    logger.exception("views batch failed")
                    reply = ("error", f"{type(error).__name__}: {error}", store.seen_position)
            _write(sink, marshal.dumps(reply))
    finally:
        events.close()


def main() -> None:
    # The frames go to the parent on the original standard output; anything
    # else that writes to it (a stray print) goes to standard error instead.
    sink = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # Ctrl-C in the server's terminal reaches this process too: it is the
    # server that stops, closing our input, which ends the loop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "--json-logs" in sys.argv[1:]:  # ledger serve --log-format json
        quiet_lookups()
        logging.basicConfig(level=logging.WARNING, handlers=[json_handler()])
    else:
        logging.basicConfig(level=logging.WARNING, format="views process: %(message)s")
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # (see ledger serve)
    tune_gc()
    serve(sys.stdin.buffer, sink)


if __name__ == "__main__":
    main()
