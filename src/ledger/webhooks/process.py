"""The dispatcher in a process of its own (``LEDGER_WEBHOOKS_PROCESS``).

In the server's process the dispatcher's threads share its GIL: under an
HTTP flash sale with ten subscriptions they took nearly half of the
sales' throughput (bench.webhooks, 0.53x). Here it runs in a child the
server starts (``python -m ledger.webhooks.process``), told the database
URL on its standard input, which it then reads to its end: when the server
stops -- or is killed, even with -9 -- the pipe closes, the child stops,
and its dispatch lock (a PostgreSQL session or a file lock) is let go with
it. A child that dies is started again by the server after a second. It
runs at a lower scheduling priority (nice 19, the lowest): when the processors are
busy the sales come first, and deliveries catch up when they leave time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading

from ledger.store.database import DatabaseURL

logger = logging.getLogger("ledger.webhooks")
RESTART_SECONDS = 1.0
NICENESS = 19  # the child's scheduling priority, below the server's


class DispatcherProcess:
    """The parent's handle: start, keep alive, stop."""

    def __init__(self, url: DatabaseURL, *, json_logs: bool = False) -> None:
        self._url = url
        self._json_logs = json_logs
        self._child: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    def start(self) -> None:
        self._watch = threading.Thread(target=self._keep, name="ledger-webhooks-child", daemon=True)
        self._watch.start()

    def nudge(self) -> None:
        """(The child looks every 50 ms.)"""

    def _spawn(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "ledger.webhooks.process"]
            + (["--json-logs"] if self._json_logs else []),
            stdin=subprocess.PIPE,
            close_fds=True,
        )
        if child.stdin is not None:
            child.stdin.write(json.dumps(dataclasses.asdict(self._url)).encode() + b"\n")
            child.stdin.flush()
        return child

    def _keep(self) -> None:
        while not self._stop.is_set():
            try:
                self._child = self._spawn()
            except OSError:
                logger.exception("webhooks: cannot start the dispatcher's process")
                self._stop.wait(RESTART_SECONDS)
                continue
            while not self._stop.is_set() and self._child.poll() is None:
                self._stop.wait(0.5)
            if not self._stop.is_set():
                logger.warning(
                    "webhooks: the dispatcher's process ended (%s); starting another",
                    self._child.returncode,
                )
                self._stop.wait(RESTART_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.join(timeout=5)
        child = self._child
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()  # the child's signal to stop
        try:
            child.wait(timeout=35)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us, by closing stdin
    from ledger.config import Settings  # noqa: PLC0415 - the child's own imports
    from ledger.jsonlog import json_handler  # noqa: PLC0415
    from ledger.service import Ledger  # noqa: PLC0415
    from ledger.store.codevault import Keyring  # noqa: PLC0415
    from ledger.store.webhooks import WebhookStore  # noqa: PLC0415
    from ledger.tuning import tune_gc  # noqa: PLC0415
    from ledger.webhooks.dispatcher import Dispatcher  # noqa: PLC0415
    from ledger.webhooks.sender import Sender  # noqa: PLC0415

    if "--json-logs" in sys.argv[1:]:
        logging.basicConfig(level=logging.INFO, handlers=[json_handler()])
    else:
        logging.basicConfig(level=logging.INFO, format="webhooks process: %(message)s")
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    tune_gc()
    os.nice(NICENESS)  # the sales first: deliveries take what CPU they leave
    url = DatabaseURL(**json.loads(sys.stdin.buffer.readline()))
    settings = Settings()
    keyring = Keyring.load(settings.code_keyring_file) if settings.code_keyring_file else None
    ledger = Ledger(url, cache_size=1_000, server_name=settings.server_name)
    try:
        sender = Sender(
            allow_private=settings.webhooks_allow_private, timeout=settings.webhooks_timeout
        )
        store = WebhookStore(ledger.event_store.recorder, keyring)
        dispatcher = Dispatcher(ledger, store, sender, url)
        dispatcher.start()
        sys.stdin.buffer.read()  # until the server closes it, or dies
        dispatcher.stop()
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
