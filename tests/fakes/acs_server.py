"""A fake Azure Communication Services Call Automation endpoint over HTTPS on loopback.

Tests drive our server through the real `azure-communication-callautomation` SDK, so the fake
speaks the REST API that SDK really calls (api-version 2026-03-12 in SDK 1.6): answering a
call and hanging up, for everyone (`:terminate`) or for us alone (`DELETE`). Every request is
recorded with its body and its HMAC `Authorization` header, and `fail_next()` scripts ACS-style
errors. `from_connection_string` drops the endpoint's scheme and always speaks HTTPS, so the
fake serves TLS with a certificate from a locally made CA (`make_tls_material`) that the client
under test must be told to trust.

The server runs its own event loop in a thread, so it outlives the function-scoped loops of
pytest-asyncio and never blocks the test's loop.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ANSWER = "/calling/callConnections:answer"
# `hang_up(is_for_everyone=True)` terminates the call; `hang_up(False)` only leaves it.
HANG_UPS = {
    ("POST", re.compile(r"/calling/callConnections/[^/:]+:terminate")),
    ("DELETE", re.compile(r"/calling/callConnections/[^/:]+")),
}
# The fake resource's identity, as ACS names the users it answers calls as.
RESOURCE_ID = "00000000-0000-0000-0000-00000000acs0"


@dataclass(frozen=True)
class TlsMaterial:
    """PEM files: a test CA, and a server certificate for 127.0.0.1 and localhost it signed."""

    ca_path: Path
    cert_path: Path
    key_path: Path


def make_tls_material(directory: Path) -> TlsMaterial:
    """Make a CA and a server certificate signed by it, valid for a day, in `directory`.

    The extensions are the ones strict verifiers (Python 3.13's VERIFY_X509_STRICT) insist on.
    """
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake ACS test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = TlsMaterial(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    tls.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


def key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """A CA signs certificates; a server signs handshakes."""
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class RecordedAcsRequest:
    """One request the fake received; `headers` include the SDK's HMAC `Authorization`."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None


def acs_error(status: int, code: str, message: str) -> web.Response:
    """An error as ACS sends it, which the SDK turns into an `HttpResponseError`."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class FakeAcsServer:
    """The fake: `start()` (or `with`), point a client at `endpoint` or `connection_string`,
    read `requests`, then `stop()`."""

    def __init__(self, tls: TlsMaterial) -> None:
        self.tls = tls
        self.port = 0
        self.access_key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.answers: list[dict[str, Any]] = []  # the bodies `:answer` replied, oldest first
        self._requests: list[RecordedAcsRequest] = []
        self._failures: list[web.Response] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.endpoint};accesskey={self.access_key}"

    @property
    def requests(self) -> list[RecordedAcsRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, suffix: str, method: str | None = None) -> list[RecordedAcsRequest]:
        """The requests whose path ends with `suffix` (":answer", ":terminate", a call id)."""
        return [r for r in self.requests if r.path.endswith(suffix) and method in (None, r.method)]

    def wait_for(
        self, predicate: Callable[[RecordedAcsRequest], bool], timeout: float = 5.0
    ) -> RecordedAcsRequest:
        """Block until a request matching `predicate` has arrived, and return the first one.

        This blocks the calling thread: from a coroutine, `await asyncio.to_thread(...)` it.
        """
        deadline = time.monotonic() + timeout
        while True:
            for request in self.requests:
                if predicate(request):
                    return request
            if time.monotonic() > deadline:
                seen = [f"{r.method} {r.path}" for r in self.requests]
                raise TimeoutError(f"fake ACS: no matching request in {timeout}s; saw {seen}")
            time.sleep(0.01)

    def fail_next(
        self,
        status: int,
        code: str = "ScriptedFailure",
        message: str = "fake ACS: scripted failure",
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests, whatever their route, with this ACS error.

        Each SDK retry takes one of these failures. By default (azure-core's retry policy) the
        SDK retries a POST answered 500, 503 or 504 (a DELETE also 408, 429 or 502; anything
        with a Retry-After header) three times, after 0, 1.6 and 3.2 s: four requests in ~5 s.
        Build the client with `retry_total=0` to see each failure once.
        """
        with self._lock:
            self._failures.extend(acs_error(status, code, message) for _ in range(times))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        text = await request.text()  # the SDK signs and sends "" when there is no body
        body = json.loads(text) if text else None
        recorded = RecordedAcsRequest(
            request.method, request.path, dict(request.query), dict(request.headers), body
        )
        signed = request.headers.get("Authorization", "").startswith("HMAC-SHA256 ")
        with self._lock:
            self._requests.append(recorded)
            failure = self._failures.pop(0) if self._failures and signed else None
        if not signed:
            return acs_error(401, "Unauthorized", "fake ACS: no HMAC-SHA256 Authorization")
        if failure is not None:
            return failure
        if request.method == "POST" and request.path == ANSWER:
            return web.json_response(self._answer(body or {}))
        if any(request.method == m and p.fullmatch(request.path) for m, p in HANG_UPS):
            return web.Response(status=204)
        return acs_error(404, "NotFound", f"fake ACS: no route for {request.method} {request.path}")

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """CallConnectionProperties as ACS answers `:answer`, for a new call leg."""
        answer: dict[str, Any] = {
            "callConnectionId": str(uuid.uuid4()),
            "serverCallId": base64.urlsafe_b64encode(
                f"https://fake-acs.invalid/conv/{uuid.uuid4()}".encode()
            ).decode(),
            "targets": [],
            "callConnectionState": "connecting",
            "callbackUri": request.get("callbackUri"),
            "correlationId": str(uuid.uuid4()),
            "answeredBy": {"id": f"8:acs:{RESOURCE_ID}_{uuid.uuid4()}"},
        }
        if streaming := request.get("mediaStreamingOptions"):
            answer["mediaStreamingSubscription"] = {
                "id": str(uuid.uuid4()),
                "state": "inactive",
                "subscribedContentTypes": [streaming.get("contentType", "audio")],
            }
        with self._lock:
            self.answers.append(answer)
        return answer

    def start(self) -> FakeAcsServer:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-acs", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    async def _serve(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.cert_path, self.tls.key_path)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context).start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        assert self._loop is not None and self._thread is not None and self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> FakeAcsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
