"""SQLite files are private: created mode 0600, whatever the umask.

A ledger's SQLite file holds API key hashes and sealed redemption codes
beside the events. SQLite itself creates a new database file with mode
``0644 & ~umask`` -- readable by every local user under the usual umask.
So the file is created here first, mode 0600, before SQLite opens it.
SQLite creates the ``-wal`` and ``-shm`` files (and a ``-journal``)
beside it with the database file's own mode, whatever the umask
(``os_unix.c``: ``findCreateFileMode``, ``unixOpenSharedMemory``; for
``-wal`` and ``-shm`` checked by ``tests/e2e/test_file_modes.py``), so
they are 0600 too.

An existing file is left as it is: its mode is its owner's decision (a
backup group may read it on purpose), and ``ledger verify`` must change
nothing in a store it audits. If it, or its ``-wal`` or ``-shm``, is open
to other users, a process that opens the store to write (the server, the
Python API, ``ledger api-keys issue``, ``ledger codes import`` ...) logs a
warning once, with the command that tightens it; the read-only paths
(``ledger verify``, ``api-keys list``, ``views status``) stay quiet.

Every SQLite store the ledger opens goes through :class:`PrivateSQLiteFactory`
(named in :meth:`DatabaseURL.event_store_env`); the views' scratch replay
file uses :func:`create_private` directly.
"""

from __future__ import annotations

import logging
import os
import stat
import threading

from eventsourcing.sqlite import SQLiteFactory
from eventsourcing.utils import Environment, EnvType, strtobool

logger = logging.getLogger("ledger.store")

MODE = 0o600
SIDE_FILES = ("-wal", "-shm")
_warned: set[str] = set()
_warned_lock = threading.Lock()


def create_private(path: str, *, warn: bool = True) -> bool:
    """Create the empty file ``path`` with mode 0600 unless it exists.

    Returns whether it was created. An existing file is not changed; if it
    or its side files are open to group or others, that is logged once
    (with ``warn``). A file that cannot be created (no such directory, no
    permission) is left for SQLite to report as it always has.
    """
    if not path or path == ":memory:" or path.startswith("file:") or "mode=memory" in path:
        return False
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, MODE)
    except FileExistsError:
        if warn:
            _warn_if_open(path)
        return False
    except OSError:
        return False
    try:
        os.fchmod(descriptor, MODE)  # exactly 0600, even under a umask such as 0o277
    finally:
        os.close(descriptor)
    return True


def _warn_if_open(path: str) -> None:
    open_to_others = []
    for name in (path, *(path + suffix for suffix in SIDE_FILES)):
        try:
            found = os.stat(name)
        except OSError:
            continue
        mode = stat.S_IMODE(found.st_mode)
        if stat.S_ISREG(found.st_mode) and mode & 0o077:  # a directory: SQLite says so
            open_to_others.append(f"{name} (mode {mode:04o})")
    if not open_to_others:
        return
    key = os.path.realpath(path)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(
        "%s open to other users: the store holds API key hashes and sealed codes; "
        "tighten with: chmod 600 %s*",
        ", ".join(open_to_others),
        path,
    )


class PrivateSQLiteFactory(SQLiteFactory):
    """The library's SQLite infrastructure, on a file created private."""

    def __init__(self, env: Environment | EnvType | None):
        settings = env if isinstance(env, Environment) else Environment(env=env)
        writing = strtobool(settings.get(self.CREATE_TABLE) or "yes")  # as the library reads it
        create_private(settings.get(self.SQLITE_DBNAME) or "", warn=writing)
        super().__init__(settings)
