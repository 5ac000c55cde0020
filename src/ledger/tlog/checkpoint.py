"""``c2sp.org/tlog-checkpoint@v1.0.0``: the checkpoint note body."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.tlog.c2sp import (
    _HASH_SIZE,
    MAX_TREE_SIZE,
    MalformedCheckpointError,
    _as_text,
    _b64decode,
    _b64encode,
    _check_int,
    _check_note_chars,
    _parse_decimal,
)

# -- checkpoints -------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint note body: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise MalformedCheckpointError("the origin must be a non-empty string")
        _check_int(self.size, "tree size", MAX_TREE_SIZE, MalformedCheckpointError)
        if not isinstance(self.root, bytes) or len(self.root) != _HASH_SIZE:
            raise MalformedCheckpointError(f"the root hash must be {_HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise MalformedCheckpointError("extensions must be a tuple of lines")
        for line in (self.origin, *self.extensions):
            if not isinstance(line, str) or not line:
                raise MalformedCheckpointError("origin and extension lines must be non-empty")
            _as_text(line, MalformedCheckpointError, "checkpoint line")
            if "\n" in line:
                raise MalformedCheckpointError(f"a checkpoint line contains a newline: {line!r}")
            _check_note_chars(line, "checkpoint line", MalformedCheckpointError)

    def body(self) -> str:
        """``origin\\nsize\\nbase64(root)\\n[extension lines\\n]``."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str | bytes) -> Checkpoint:
        """Parse a checkpoint note body strictly."""
        body = _as_text(body, MalformedCheckpointError, "checkpoint")
        if not body.endswith("\n"):
            raise MalformedCheckpointError("a checkpoint body must end in a newline")
        _check_note_chars(body, "checkpoint", MalformedCheckpointError)
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpointError("a checkpoint needs origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise MalformedCheckpointError("the origin line is empty")
        size = _parse_decimal(size_text, "tree size", MalformedCheckpointError, MAX_TREE_SIZE)
        root = _b64decode(root_text, "root hash", MalformedCheckpointError)
        if len(root) != _HASH_SIZE:
            raise MalformedCheckpointError(f"the root hash is {len(root)} bytes, not {_HASH_SIZE}")
        if any(not line for line in extensions):
            raise MalformedCheckpointError("extension lines must be non-empty")
        return cls(origin, size, root, tuple(extensions))
