"""C2SP tlog-policy: which logs and witnesses to trust, and the witness quorum.

A policy file is line based::

    # comment
    log <vkey> [<url>]
    witness <name> <vkey> [<url>]
    group <name> all|any|<k> <member>...
    quorum <name>|none

Parsing follows c2sp.org/tlog-policy (C2SP/C2SP ``tlog-policy.md``, commit
1896a5a) strictly:

* fields are separated by runs of ASCII space and tab; leading and trailing
  whitespace is allowed; blank lines and lines whose first field starts with
  ``#`` are ignored (a ``#`` later on a line is an ordinary character);
* every line ends in a newline, and only tab, newline, 0x20-0x7E and
  octets >= 0x80 may appear; octets >= 0x80 are opaque (bytes input is
  decoded with ``surrogateescape``, so names compare as octet strings);
* witnesses and groups share one namespace; ``none`` is predefined, may be
  the quorum, and may not be defined or be a group member;
* a group can only name witnesses and groups defined on earlier lines; each
  name can be a group member at most once in the whole file (as the
  reference implementation, sigsum-go, reads the rule); ``1 <= k <= n``;
* exactly one quorum line, naming something defined earlier (or ``none``);
* no two logs, and no two witnesses, may wrap the same public key.

Keys: log vkeys must be Ed25519 note keys (type ``0x01``) or Ed25519
cosignature keys (``0x04``); witness vkeys must be Ed25519 cosignature keys
(``0x04``). ML-DSA-44 (``0x06``) is not supported. A log's vkey name must be
the checkpoint origin; :meth:`Policy.check` only uses log keys named after
the checkpoint's origin line.

Errors are :class:`PolicyError` (a ``ValueError``) with the 1-based ``line``
number when one applies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ledger.tlog.c2sp import (
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
    InvalidSignatureError,
    NoteError,
    UnverifiedNoteError,
)
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Verifier
from ledger.tlog.signed_note import Note, parse_note, verify_signatures

__all__ = [
    "NONE",
    "Group",
    "Policy",
    "PolicyError",
    "PolicyLog",
    "PolicyResult",
    "format_policy",
    "parse_policy",
]

NONE = "none"
"""The predefined name of the empty quorum: no cosignature needed."""

_LOG_KEY_TYPES = (KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE_V1)
_WITNESS_KEY_TYPES = (KEY_TYPE_COSIGNATURE_V1,)
_SEPARATORS = re.compile(r"[ \t]+")
_THRESHOLD = re.compile(r"0|[1-9][0-9]*")


class PolicyError(ValueError):
    """A policy is malformed; ``line`` is the 1-based line number, if any."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


def _bad_char(text: str) -> int | None:
    """Index of the first character tlog-policy forbids, if any."""
    for i, ch in enumerate(text):
        if not (ch == "\t" or " " <= ch <= "~" or ch >= "\x80"):
            return i
    return None


def _check_token(value: str, what: str) -> None:
    """A value that must survive as one field of a policy line."""
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{what} must be a non-empty string")
    if _SEPARATORS.search(value) or "\n" in value:
        raise PolicyError(f"{what} {value!r} contains whitespace")
    i = _bad_char(value)
    if i is not None:
        raise PolicyError(f"{what} {value!r} contains control character {ord(value[i]):#04x}")


@dataclass(frozen=True)
class PolicyLog:
    """A trusted log: its key (named after its origin) and an optional URL."""

    verifier: Verifier
    url: str | None = None


@dataclass(frozen=True)
class Group:
    """A witness group: witnessed when at least ``threshold`` members are."""

    name: str
    threshold: int
    members: tuple[str, ...]


class _Builder:
    """Applies the tlog-policy rules one definition at a time."""

    def __init__(self) -> None:
        self.logs: list[PolicyLog] = []
        self.log_keys: set[bytes] = set()
        self.witnesses: dict[str, Verifier] = {}
        self.witness_urls: dict[str, str] = {}
        self.witness_keys: set[bytes] = set()
        self.groups: dict[str, Group] = {}
        self.member_of: dict[str, str] = {}
        self.quorum: str | None = None

    def _define(self, name: str, what: str) -> None:
        _check_token(name, f"{what} name")
        if name == NONE:
            raise PolicyError(f"{what} name {NONE!r} is predefined")
        if name in self.witnesses or name in self.groups:
            raise PolicyError(f"duplicate name {name!r}")

    def add_log(self, verifier: Verifier, url: str | None) -> None:
        if verifier.key_type not in _LOG_KEY_TYPES:
            raise PolicyError(
                f"log key {verifier.name!r} has signature type {verifier.key_type:#04x}; "
                "logs need 0x01 (Ed25519) or 0x04 (Ed25519 cosignature) keys"
            )
        if url is not None:
            _check_token(url, "log URL")
        if verifier.public_key in self.log_keys:
            raise PolicyError(f"duplicate log key {verifier.vkey()}")
        self.log_keys.add(verifier.public_key)
        self.logs.append(PolicyLog(verifier, url))

    def add_witness(self, name: str, verifier: Verifier, url: str | None) -> None:
        self._define(name, "witness")
        if verifier.key_type not in _WITNESS_KEY_TYPES:
            raise PolicyError(
                f"witness {name!r} has signature type {verifier.key_type:#04x}; "
                "witnesses need 0x04 (Ed25519 cosignature/v1) keys"
            )
        if url is not None:
            _check_token(url, "witness URL")
        if verifier.public_key in self.witness_keys:
            raise PolicyError(f"duplicate witness key {verifier.vkey()}")
        self.witness_keys.add(verifier.public_key)
        self.witnesses[name] = verifier
        if url is not None:
            self.witness_urls[name] = url

    def add_group(self, name: str, threshold: int, members: Sequence[str]) -> None:
        self._define(name, "group")
        if not members:
            raise PolicyError(f"group {name!r} needs at least one member")
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise PolicyError(f"group {name!r}: threshold must be an int")
        if not 1 <= threshold <= len(members):
            raise PolicyError(
                f"group {name!r}: threshold {threshold} is not between 1 and {len(members)}"
            )
        for member in members:
            if member == NONE:
                raise PolicyError(f"group {name!r}: {NONE!r} cannot be a group member")
            if member not in self.witnesses and member not in self.groups:
                raise PolicyError(f"group {name!r}: undefined name {member!r}")
            if member in self.member_of:
                raise PolicyError(
                    f"group {name!r}: {member!r} is already a member of {self.member_of[member]!r}"
                )
            self.member_of[member] = name
        self.groups[name] = Group(name, threshold, tuple(members))

    def set_quorum(self, name: str) -> None:
        if self.quorum is not None:
            raise PolicyError("only one quorum line is allowed")
        if name != NONE and name not in self.witnesses and name not in self.groups:
            raise PolicyError(f"quorum: undefined name {name!r}")
        self.quorum = name


@dataclass(frozen=True)
class PolicyResult:
    """What :meth:`Policy.check` found in a signed checkpoint.

    ``logs`` are the log keys that signed it validly (at least one, or
    :meth:`Policy.check` raises). ``cosigners`` are the policy names of the
    witnesses with a valid cosignature, ``timestamps`` their (latest)
    cosignature times. ``invalid_cosigners`` maps each known witness whose
    cosignature failed to why. ``quorum_met`` counts valid cosignatures only.
    """

    checkpoint: Checkpoint
    note: Note
    logs: tuple[Verifier, ...]
    cosigners: frozenset[str]
    timestamps: dict[str, int]
    invalid_cosigners: dict[str, str]
    quorum_met: bool

    @property
    def ok(self) -> bool:
        """Quorum met and no known witness's cosignature failed.

        Signed-note: a failing signature from a known key SHOULD reject the
        whole note, so a forged cosignature fails the check even when the
        valid ones meet the quorum.
        """
        return self.quorum_met and not self.invalid_cosigners


@dataclass(frozen=True)
class Policy:
    """A parsed (or built) tlog-policy. Construction validates every rule."""

    logs: tuple[PolicyLog, ...]
    witnesses: dict[str, Verifier]
    groups: dict[str, Group]
    quorum: str
    witness_urls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        b = _Builder()
        for log in self.logs:
            b.add_log(log.verifier, log.url)
        for name in self.witness_urls:
            if name not in self.witnesses:
                raise PolicyError(f"URL for undefined witness {name!r}")
        for name, verifier in self.witnesses.items():
            b.add_witness(name, verifier, self.witness_urls.get(name))
        for name, group in self.groups.items():
            if name != group.name:
                raise PolicyError(f"group {group.name!r} is filed under {name!r}")
            b.add_group(group.name, group.threshold, group.members)
        b.set_quorum(self.quorum)

    @classmethod
    def parse(cls, data: str | bytes) -> Policy:
        """Same as :func:`parse_policy`."""
        return parse_policy(data)

    def format(self) -> str:
        """Same as :func:`format_policy`."""
        return format_policy(self)

    @property
    def log_verifiers(self) -> tuple[Verifier, ...]:
        """The trusted log keys."""
        return tuple(log.verifier for log in self.logs)

    def satisfied(self, cosigners: Iterable[str]) -> bool:
        """Whether witnesses ``cosigners`` (policy names) meet the quorum.

        A witness is witnessed if it cosigned; a group if at least ``k`` of its
        members are witnessed; ``none`` always. Unknown names are ignored.
        """
        if self.quorum == NONE:
            return True
        signed = set(cosigners)
        witnessed = {name: name in signed for name in self.witnesses}
        for group in self.groups.values():  # definition order: members come first
            count = sum(witnessed[m] for m in group.members)
            witnessed[group.name] = count >= group.threshold
        return witnessed[self.quorum]

    def check(
        self, signed_checkpoint: str | bytes, *, log_verifiers: Iterable[Verifier] = ()
    ) -> PolicyResult:
        """Verify a signed checkpoint against this policy.

        Needs a valid signature from a trusted log key whose name is the
        checkpoint origin (``log_verifiers`` adds keys known from elsewhere, as
        tlog-policy allows a policy without logs). Then every cosignature from
        a known witness is verified: valid ones count toward the quorum, failed
        ones are reported in :attr:`PolicyResult.invalid_cosigners`.

        Raises :class:`~ledger.tlog.note.NoteError` subclasses: a malformed
        note or checkpoint; :class:`~ledger.tlog.note.UnverifiedNoteError` if
        no trusted log key for the origin signed;
        :class:`~ledger.tlog.note.InvalidSignatureError` if a trusted log key's
        signature fails.
        """
        note = parse_note(signed_checkpoint)
        checkpoint = Checkpoint.parse(note.text)
        logs = [v for v in (*self.log_verifiers, *log_verifiers) if v.name == checkpoint.origin]
        if not logs:
            raise UnverifiedNoteError(f"no trusted log key for origin {checkpoint.origin!r}")
        log_set = set(logs)
        witness_names = {v: name for name, v in self.witnesses.items()}
        signed_logs: list[Verifier] = []
        timestamps: dict[str, int] = {}
        invalid: dict[str, str] = {}
        for check in verify_signatures(note, [*logs, *self.witnesses.values()]):
            v = check.verifier
            if v is None:
                continue
            if v in log_set:
                if not check.valid:
                    raise InvalidSignatureError(check.error or "invalid log signature")
                if v not in signed_logs:
                    signed_logs.append(v)
            name = witness_names.get(v)
            if name is None:
                continue
            if check.valid and check.timestamp is not None:
                timestamps[name] = max(timestamps.get(name, 0), check.timestamp)
            else:
                invalid.setdefault(name, check.error or "invalid cosignature")
        if not signed_logs:
            raise UnverifiedNoteError(
                f"checkpoint for {checkpoint.origin!r} has no signature from a trusted log key"
            )
        cosigners = frozenset(timestamps)
        return PolicyResult(
            checkpoint=checkpoint,
            note=note,
            logs=tuple(signed_logs),
            cosigners=cosigners,
            timestamps=timestamps,
            invalid_cosigners=invalid,
            quorum_met=self.satisfied(cosigners),
        )


def _vkey(text: str, lineno: int) -> Verifier:
    try:
        return Verifier.from_vkey(text)
    except NoteError as exc:
        raise PolicyError(f"invalid vkey: {exc}", lineno) from None


def _threshold(text: str, n: int, group: str, lineno: int) -> int:
    if text == "all":
        return n
    if text == "any":
        return 1
    if not _THRESHOLD.fullmatch(text):
        raise PolicyError(
            f"group {group!r}: threshold must be 'all', 'any' or a decimal number, got {text!r}",
            lineno,
        )
    # Anything longer than n's digits is out of range; add_group says so.
    return int(text) if len(text) <= len(str(n)) else n + 1


def parse_policy(data: str | bytes) -> Policy:  # noqa: C901, PLR0912 - one check per policy line kind, flat on purpose
    """Parse a tlog-policy file strictly."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    lines = text.split("\n")
    if lines[-1]:
        raise PolicyError("the last line does not end in a newline", len(lines))
    b = _Builder()
    for lineno, line in enumerate(lines[:-1], 1):
        i = _bad_char(line)
        if i is not None:
            raise PolicyError(f"control character {ord(line[i]):#04x} at column {i + 1}", lineno)
        fields = _SEPARATORS.split(line.strip(" \t"))
        if fields == [""] or fields[0].startswith("#"):
            continue
        keyword, args = fields[0], fields[1:]
        try:
            if keyword == "log":
                if not 1 <= len(args) <= 2:
                    raise PolicyError("expected 'log <vkey> [<url>]'")
                b.add_log(_vkey(args[0], lineno), args[1] if len(args) == 2 else None)
            elif keyword == "witness":
                if not 2 <= len(args) <= 3:
                    raise PolicyError("expected 'witness <name> <vkey> [<url>]'")
                b.add_witness(args[0], _vkey(args[1], lineno), args[2] if len(args) == 3 else None)
            elif keyword == "group":
                if len(args) < 3:
                    raise PolicyError("expected 'group <name> all|any|<k> <member>...'")
                members = args[2:]
                k = _threshold(args[1], len(members), args[0], lineno)
                b.add_group(args[0], k, members)
            elif keyword == "quorum":
                if len(args) != 1:
                    raise PolicyError("expected 'quorum <name>'")
                b.set_quorum(args[0])
            else:
                raise PolicyError(f"unknown keyword {keyword!r}")
        except PolicyError as exc:
            if exc.line is not None:
                raise
            raise PolicyError(str(exc), lineno) from None
    if b.quorum is None:
        raise PolicyError("no quorum line")
    return Policy(
        logs=tuple(b.logs),
        witnesses=b.witnesses,
        groups=b.groups,
        quorum=b.quorum,
        witness_urls=b.witness_urls,
    )


def format_policy(policy: Policy) -> str:
    """Write ``policy`` as a tlog-policy file that :func:`parse_policy` reads back.

    Logs first, then witnesses, groups (in definition order) and the quorum.
    A group's threshold is written ``all`` when ``k == n``, ``any`` when
    ``k == 1 < n``, else as a number.
    """
    out: list[str] = []
    for log in policy.logs:
        out.append(f"log {log.verifier.vkey()}" + (f" {log.url}" if log.url else ""))
    for name, verifier in policy.witnesses.items():
        url = policy.witness_urls.get(name)
        out.append(f"witness {name} {verifier.vkey()}" + (f" {url}" if url else ""))
    for group in policy.groups.values():
        n = len(group.members)
        k = "all" if group.threshold == n else "any" if group.threshold == 1 else group.threshold
        out.append(f"group {group.name} {k} {' '.join(group.members)}")
    out.append(f"quorum {policy.quorum}")
    return "".join(line + "\n" for line in out)
