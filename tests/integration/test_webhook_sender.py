"""The webhook sender over real sockets (issue 17 items 3 and 4): every
request is signed so the Standard Webhooks reference library (v1) and
cryptography (v1a) verify it, also during a rotation; only 2xx delivers;
redirects are not followed; timeouts, trickling and huge answers are
bounded; Retry-After is read; private addresses are refused unless the
operator allows them. Each receiver is tests/webhook_receiver.py's, a real
HTTP server on 127.0.0.1 (or a raw socket where HTTP itself is the fault)."""

from __future__ import annotations

import base64
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ledger.domain.webhook import UnsafeUrlError, retry_delay
from ledger.webhooks.sender import (
    Attempt,
    Sender,
    SigningKey,
    new_asymmetric_secret,
    new_secret,
    public_key,
    signature_header,
)
from tests.webhook_receiver import Reply, WebhookReceiver

BODY = b'{"type":"unit.sold","version":1,"id":"e1","data":{"serial":37}}'


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def sender() -> Iterator[Sender]:
    s = Sender(allow_private=True, timeout=2.0)
    yield s
    s.close()


def _send(
    sender: Sender, url: str, secret: str, msg_id: str = "msg_1", body: bytes = BODY
) -> Attempt:
    return sender.send(url, msg_id=msg_id, body=body, keys=[SigningKey("v1", secret)], now=_now())


# -- signed, delivered, verified -------------------------------------------------------


def test_a_delivery_carries_the_standard_headers_and_verifies(
    receiver: WebhookReceiver, sender: Sender
) -> None:
    secret = new_secret()
    receiver.add_secret(secret)
    now = _now()
    attempt = sender.send(
        receiver.url(), msg_id="msg_abc", body=BODY, keys=[SigningKey("v1", secret)], now=now
    )
    assert attempt.delivered
    assert not attempt.gone
    assert attempt.status == 200
    assert attempt.error is None
    assert 0 < attempt.latency_ms < 2000
    (got,) = receiver.check()  # verified at receipt by standardwebhooks.Webhook.verify
    assert got.verified is True
    assert got.body == BODY  # byte for byte: what was signed
    assert got.id == "msg_abc"
    assert got.headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("ledger-webhooks/")
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    # What a subscriber does: the reference library, the raw body, the headers.
    assert Webhook(secret).verify(got.body, got.headers) == got.json()


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    one, two = new_secret(), new_secret()
    assert one.startswith("whsec_")
    assert len(base64.b64decode(one.removeprefix("whsec_"))) == 32
    assert one != two
    assert "whsec_" not in repr(SigningKey("v1", one))  # never printed


def test_a_rotation_signs_with_both_keys_and_either_verifies(
    receiver: WebhookReceiver, sender: Sender
) -> None:
    old, new, stranger = new_secret(), new_secret(), new_secret()
    keys = [SigningKey("v1", old), SigningKey("v1", new)]
    attempt = sender.send(receiver.url(), msg_id="msg_rot", body=BODY, keys=keys, now=_now())
    assert attempt.delivered
    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(got.body, got.headers)


def test_v1a_signatures_verify_with_ed25519(receiver: WebhookReceiver, sender: Sender) -> None:
    secret = new_asymmetric_secret()
    receiver.add_secret(public_key(secret), path="/a")
    hmac_secret = new_secret()
    keys = [SigningKey("v1a", secret), SigningKey("v1", hmac_secret)]
    attempt = sender.send(receiver.url("/a"), msg_id="msg_a", body=BODY, keys=keys, now=_now())
    assert attempt.delivered
    (got,) = receiver.check()
    assert got.verified is True
    # Verified by hand too: cryptography's Ed25519 over "id.timestamp.body".
    versions = dict(s.split(",", 1) for s in got.headers["webhook-signature"].split(" "))
    key = Ed25519PublicKey.from_public_bytes(
        base64.b64decode(public_key(secret).removeprefix("whpk_"))
    )
    key.verify(
        base64.b64decode(versions["v1a"]),
        f"msg_a.{got.headers['webhook-timestamp']}.".encode() + BODY,
    )
    Webhook(hmac_secret).verify(got.body, got.headers)


def test_a_64_byte_libsodium_v1a_secret_signs_like_its_seed() -> None:
    seed_secret = new_asymmetric_secret()
    seed = base64.b64decode(seed_secret.removeprefix("whsk_"))
    public = base64.b64decode(public_key(seed_secret).removeprefix("whpk_"))
    long_secret = "whsk_" + base64.b64encode(seed + public).decode()
    now = _now()
    assert signature_header("m", now, BODY, [SigningKey("v1a", long_secret)]) == signature_header(
        "m", now, BODY, [SigningKey("v1a", seed_secret)]
    )
    wrong = "whsk_" + base64.b64encode(seed + bytes(32)).decode()
    with pytest.raises(ValueError, match="public half"):
        signature_header("m", now, BODY, [SigningKey("v1a", wrong)])


def test_the_v1_signature_is_the_reference_library_s() -> None:
    secret = new_secret()
    now = datetime(2026, 12, 8, 1, 2, 3, 900000, tzinfo=UTC)
    header = signature_header("msg_x", now, BODY, [SigningKey("v1", secret)])
    assert header == Webhook(secret).sign("msg_x", now, BODY)
    # The same instant in another zone signs the same: seconds since the epoch.
    elsewhere = now.astimezone(datetime.now().astimezone().tzinfo)
    assert signature_header("msg_x", elsewhere, BODY, [SigningKey("v1", secret)]) == header


@pytest.mark.parametrize(
    ("msg_id", "now", "keys", "why"),
    [
        ("a.b", _now(), [SigningKey("v1", "whsec_" + "A" * 44)], "no '.'"),
        ("", _now(), [SigningKey("v1", "whsec_" + "A" * 44)], "no '.'"),
        ("m", datetime(2026, 12, 8), [SigningKey("v1", "whsec_" + "A" * 44)], "timezone-aware"),
        ("m", _now(), [], "at least one"),
        ("m", _now(), [SigningKey("v1", "whsk_" + "A" * 44)], "starts with whsec_"),
    ],
)
def test_a_caller_s_mistake_raises_before_anything_is_sent(
    receiver: WebhookReceiver,
    sender: Sender,
    msg_id: str,
    now: datetime,
    keys: list[SigningKey],
    why: str,
) -> None:
    with pytest.raises(ValueError, match=why):
        sender.send(receiver.url(), msg_id=msg_id, body=BODY, keys=keys, now=now)
    assert receiver.received == []


def test_a_wrong_signature_is_refused_by_the_receiver(
    receiver: WebhookReceiver, sender: Sender
) -> None:
    receiver.add_secret(new_secret())
    attempt = _send(sender, receiver.url(), new_secret())
    assert attempt.status == 401
    assert not attempt.delivered
    with pytest.raises(AssertionError, match="not verified"):
        receiver.check()


# -- what an answer means --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "delivered", "gone"),
    [(200, True, False), (204, True, False), (410, False, True), (404, False, False),
     (500, False, False), (503, False, False)],
)  # fmt: skip
def test_only_2xx_is_delivered_and_410_is_gone(
    receiver: WebhookReceiver, sender: Sender, status: int, delivered: bool, gone: bool
) -> None:
    receiver.answer(Reply(status=status, body=b"why not"))
    attempt = _send(sender, receiver.url(), new_secret())
    assert (attempt.status, attempt.delivered, attempt.gone) == (status, delivered, gone)
    assert attempt.excerpt == ("" if status == 204 else "why not")


def test_a_redirect_is_a_failure_and_never_followed(
    receiver: WebhookReceiver, sender: Sender
) -> None:
    receiver.answer(Reply(status=302, headers=(("Location", receiver.url("/elsewhere")),)), 1)
    attempt = _send(sender, receiver.url("/hooks"), new_secret())
    assert attempt.status == 302
    assert not attempt.delivered
    assert attempt.error == "redirects are not followed"
    time.sleep(0.2)
    assert [r.path for r in receiver.received] == ["/hooks"]


@pytest.mark.parametrize("header", ["7", "Tue, 08 Dec 2099 00:00:07 GMT"])
def test_429_with_retry_after_is_read_and_honoured(
    receiver: WebhookReceiver, sender: Sender, header: str
) -> None:
    receiver.fail(429, retry_after=header, times=1)
    attempt = _send(sender, receiver.url(), new_secret())
    assert attempt.status == 429
    assert not attempt.delivered
    assert attempt.retry_after is not None
    assert attempt.retry_after >= 7
    delay = retry_delay(1, attempt.retry_after, random.Random(1))
    assert delay is not None
    assert delay >= min(attempt.retry_after, 36000)  # not sooner than asked, capped
    assert _send(sender, receiver.url(), new_secret()).delivered  # once only


# -- bounded ------------------------------------------------------------------------------


def test_a_receiver_slower_than_the_timeout_is_a_timeout(receiver: WebhookReceiver) -> None:
    receiver.answer(Reply(delay=3.0), 1)
    with closing(Sender(allow_private=True, timeout=0.5)) as sender:
        started = time.monotonic()
        attempt = _send(sender, receiver.url(), new_secret())
        took = time.monotonic() - started
        assert _send(sender, receiver.url(), new_secret()).delivered  # and then it recovers
    assert attempt.status is None
    assert attempt.error is not None
    assert attempt.error.startswith("timeout")
    assert 0.4 < took < 1.5
    assert 400 < attempt.latency_ms < 1500


def _trickler(payload: bytes, pause: float) -> tuple[socket.socket, threading.Event]:
    """A raw server on 127.0.0.1 answering every connection with
    ``payload`` one byte per ``pause`` seconds: each read comes well within
    any per-read timeout, so only a deadline for the whole attempt ends it."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                for byte in payload:
                    if stop.is_set():
                        break
                    try:
                        connection.sendall(bytes([byte]))
                    except OSError:
                        break
                    time.sleep(pause)

    threading.Thread(target=serve, daemon=True).start()
    return listener, stop


def test_a_receiver_trickling_its_answer_is_cut_at_the_attempt_s_deadline() -> None:
    listener, stop = _trickler(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 1000, pause=0.05)
    port = listener.getsockname()[1]
    try:
        with closing(Sender(allow_private=True, timeout=0.6)) as sender:
            started = time.monotonic()
            attempt = _send(sender, f"http://127.0.0.1:{port}/", new_secret())
            took = time.monotonic() - started
    finally:
        stop.set()
        listener.close()
    assert attempt.status is None
    assert attempt.error is not None
    assert attempt.error.startswith("timeout")
    assert took < 1.2  # one deadline, not 0.6 s per byte


def test_a_huge_answer_is_read_only_up_to_the_bound(receiver: WebhookReceiver) -> None:
    receiver.answer(Reply(body_size=10 * 1024 * 1024), 1)
    with closing(Sender(allow_private=True, timeout=5.0, max_response_bytes=65536)) as sender:
        started = time.monotonic()
        attempt = _send(sender, receiver.url(), new_secret())
        took = time.monotonic() - started
        assert attempt.delivered  # the status counts; the rest was not read
        assert len(attempt.excerpt) <= 1024
        assert set(attempt.excerpt) == {"x"}
        assert took < 2.0
        # Its connection was closed, not drained or reused: the next attempt is clean.
        assert _send(sender, receiver.url(), new_secret(), msg_id="msg_2").delivered
    assert [r.id for r in receiver.received] == ["msg_1", "msg_2"]


def test_a_receiver_that_is_down_is_a_connection_failure_then_delivers_when_up(
    receiver: WebhookReceiver, sender: Sender
) -> None:
    secret = new_secret()
    receiver.add_secret(secret)
    assert _send(sender, receiver.url(), secret, msg_id="m1").delivered  # a kept-alive connection
    receiver.down()
    attempt = _send(sender, receiver.url(), secret, msg_id="m2")
    assert attempt.status is None
    assert attempt.error is not None
    assert attempt.error.startswith("connection")
    receiver.up()
    assert _send(sender, receiver.url(), secret, msg_id="m2").delivered
    assert [r.id for r in receiver.check()] == ["m1", "m2"]


def test_connections_are_kept_alive_between_attempts(
    receiver: WebhookReceiver, sender: Sender
) -> None:
    for n in range(20):
        assert _send(sender, receiver.url(), new_secret(), msg_id=f"m{n}").delivered
    assert len(receiver.received) == 20
    assert receiver.connections_accepted == 1


# -- where it may send -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hooks",
        "http://localhost:{port}/hooks",
        "http://[::1]:{port}/hooks",
        "http://[::ffff:127.0.0.1]:{port}/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://0.0.0.0:{port}/",
    ],
)
def test_private_addresses_are_refused_by_default(receiver: WebhookReceiver, url: str) -> None:
    url = url.format(port=receiver.port)
    with closing(Sender(timeout=1.0)) as sender:
        with pytest.raises(UnsafeUrlError) as refused:
            sender.check_url(url)
        assert refused.value.code == "webhook-url-unsafe"
        attempt = _send(sender, url, new_secret())
    assert attempt.status is None
    assert attempt.error is not None
    assert attempt.error.startswith("webhook-url-unsafe")
    assert not attempt.delivered
    assert receiver.received == []  # nothing left the sender


def test_the_operator_s_setting_allows_a_receiver_on_loopback(receiver: WebhookReceiver) -> None:
    with closing(Sender(allow_private=True)) as sender:
        sender.check_url(receiver.url())
        sender.check_url(f"http://localhost:{receiver.port}/hooks")
        with pytest.raises(UnsafeUrlError, match="unspecified"):
            sender.check_url("http://0.0.0.0/")  # never, setting or not


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/", "scheme"),
        ("https://u:p@example.com/", "credentials"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
def test_check_url_refuses_what_cannot_be_sent(url: str, why: str) -> None:
    with closing(Sender()) as sender:
        with pytest.raises(UnsafeUrlError, match=why):
            sender.check_url(url)
        attempt = _send(sender, url, new_secret())
    assert attempt.error is not None
    assert attempt.error.startswith("webhook-url-unsafe")


# -- https: the name's SNI and certificate, the checked address dialled -------------------


def _certificates(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A CA and a certificate it issued for ``localhost``: the server's and
    the sender's TLS contexts."""
    now = datetime.now(UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "leaf.pem", tmp / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


def test_https_sends_the_name_s_sni_and_checks_its_certificate(tmp_path: Path) -> None:
    server_tls, client_tls = _certificates(tmp_path)
    secret = new_secret()
    with WebhookReceiver(tls=server_tls) as receiver:
        receiver.add_secret(secret)
        url = receiver.url(host="localhost")
        with closing(Sender(allow_private=True, ssl_context=client_tls)) as sender:
            attempt = _send(sender, url, secret)
            assert attempt.delivered, attempt.error
            (got,) = receiver.check()
            assert got.headers["host"] == f"localhost:{receiver.port}"
            assert "localhost" in receiver.server_names
            # The certificate names localhost, not 127.0.0.1: dialled by address, checked by name.
            by_address = _send(sender, receiver.url(host="127.0.0.1"), secret)
        assert not by_address.delivered
        assert by_address.error is not None
        with closing(Sender(allow_private=True)) as untrusting:  # the system's CAs only
            refused = _send(untrusting, url, secret)
        assert refused.error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in refused.error


# -- docs/webhooks.md's receiver, run as written ------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def _documented_receiver(secret: str, handled: list[object]) -> dict[str, object]:
    text = DOCS.read_text()
    start = text.index("## Delivery, signatures and safety")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    (block,) = re.findall(r"^```python\n(.*?)^```$", section, re.S | re.M)
    namespace: dict[str, object] = {"SECRET": secret, "handle": handled.append}
    exec(compile(block, str(DOCS), "exec"), namespace)
    return namespace


def test_the_documented_receiver_verifies_and_deduplicates(
    receiver: WebhookReceiver, sender: Sender
) -> None:
    secret = new_secret()
    handled: list[object] = []
    receive = _documented_receiver(secret, handled)["receive"]
    assert callable(receive)
    for n in (1, 2, 1):  # the third is a retry of the first
        assert _send(sender, receiver.url(), secret, msg_id=f"msg_{n}").delivered
    statuses = [receive(r.body, r.headers) for r in receiver.received]
    assert statuses == [204, 204, 200]
    assert len(handled) == 2
    first = receiver.received[0]
    assert receive(first.body.replace(b"37", b"38"), first.headers | {"webhook-id": "x"}) == 400
    stranger = _documented_receiver(new_secret(), [])["receive"]
    assert callable(stranger)
    assert stranger(first.body, first.headers) == 400


def test_the_receiver_verifies_later_what_came_before_its_secret(
    receiver: WebhookReceiver, sender: Sender
) -> None:
    """A test learns a subscription's secret when it registers it; the
    dispatcher may deliver first. Such a request is verified by check()."""
    secret = new_secret()
    assert _send(sender, receiver.url("/late"), secret).delivered
    (early,) = receiver.received
    assert early.verified is None
    receiver.add_secret(new_secret(), path="/late")
    with pytest.raises(AssertionError, match="not verified"):
        receiver.check()  # the wrong secret
    receiver.add_secret(secret, path="/late")
    assert receiver.check() == [early]
    assert receiver.unique("/late") == [early]
    assert receiver.duplicates() == 0


# -- HTTP/1.1 as receivers speak it (webhooks.http1, parsed by llhttp) ---------------------


class RawReceiver:
    """A socket server on 127.0.0.1 answering each request with the next
    scripted bytes (``None``: close the connection without answering);
    counts connections and requests."""

    def __init__(self, script: list[bytes | None], close_after: tuple[int, ...] = ()) -> None:
        self.script = list(script)
        self.close_after = close_after  # request numbers after whose answer it closes
        self.connections = 0
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/raw"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection: socket.socket) -> None:
        with connection:
            buffer = b""
            while self.script:
                while b"\r\n\r\n" not in buffer:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                while len(rest) < length:
                    rest += connection.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                answer = self.script.pop(0)
                if answer is None:
                    return
                connection.sendall(answer)
                if len(self.requests) - 1 in self.close_after:
                    return

    def close(self) -> None:
        self.listener.close()


OK_EMPTY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize(
    ("answer", "status", "excerpt"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
         200, "hello"),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
         202, "ok"),
        (b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nRetry-After: 3\r\n\r\nbusy", 503, "busy"),
    ],
)  # fmt: skip
def test_chunked_interim_and_plain_answers_are_read(
    sender: Sender, answer: bytes, status: int, excerpt: str
) -> None:
    raw = RawReceiver([answer, OK_EMPTY])
    try:
        first = _send(sender, raw.url(), new_secret())
        second = _send(sender, raw.url(), new_secret(), msg_id="msg_2")
    finally:
        raw.close()
    assert (first.status, first.excerpt) == (status, excerpt)
    assert second.status == 200
    assert raw.connections == 1  # each answer read to its end: the connection kept


def test_an_answer_delimited_by_the_connection_s_end_is_read_and_not_reused(
    sender: Sender,
) -> None:
    raw = RawReceiver([b"HTTP/1.0 200 OK\r\n\r\nbody until close", OK_EMPTY], close_after=(0,))
    try:
        first = _send(sender, raw.url(), new_secret())
        second = _send(sender, raw.url(), new_secret(), msg_id="msg_2")
    finally:
        raw.close()
    assert (first.status, first.excerpt, first.delivered) == (200, "body until close", True)
    assert second.delivered
    assert raw.connections == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", "protocol"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         "protocol"),
        (None, "connection"),  # closed without answering, on a new connection
    ],
)  # fmt: skip
def test_an_unreadable_answer_or_none_is_a_failure(
    sender: Sender, answer: bytes | None, error: str
) -> None:
    raw = RawReceiver([answer])
    try:
        attempt = _send(sender, raw.url(), new_secret())
    finally:
        raw.close()
    assert attempt.status is None
    assert attempt.error is not None
    assert attempt.error.startswith(error)
    assert not attempt.delivered


def test_a_kept_alive_connection_closed_as_we_send_is_retried_once_on_a_new_one(
    sender: Sender,
) -> None:
    """The receiver reads the second request on the kept-alive connection
    and closes it unanswered (as a server closing an idle connection at
    that moment does): the sender sends it again on a new connection, once;
    the receiver de-duplicates by webhook-id."""
    raw = RawReceiver([OK_EMPTY, None, OK_EMPTY])
    try:
        first = _send(sender, raw.url(), new_secret(), msg_id="msg_1")
        second = _send(sender, raw.url(), new_secret(), msg_id="msg_2")
    finally:
        raw.close()
    assert first.delivered
    assert second.delivered
    assert raw.connections == 2
    ids = [re.search(rb"webhook-id: (\S+)", r).group(1) for r in raw.requests]  # type: ignore[union-attr]
    assert ids == [b"msg_1", b"msg_2", b"msg_2"]


def test_a_webhook_id_cannot_inject_headers(receiver: WebhookReceiver, sender: Sender) -> None:
    for bad in ("msg\r\nX-Evil: 1", "msg 1", "msg\x00", "msg_é"):
        with pytest.raises(ValueError, match="printable ASCII"):
            _send(sender, receiver.url(), new_secret(), msg_id=bad)
    assert receiver.received == []
