"""Fake ACS webhook tokens: an RS256 signer and a loopback JWKS server that publishes its key.

ACS signs the `Authorization: Bearer` token on its callbacks with a key published at
`https://acscallautomation.communication.azure.com/calling/keys`; our server fetches that key
set with PyJWT's `PyJWKClient`. Tests point it at a `JwksServer` instead and sign tokens with an
`AcsSigner`, so every check (signature, issuer, audience, expiry, unknown key) runs for real.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ACS_ISSUER = "https://acscallautomation.communication.azure.com"
KEYS_PATH = "/calling/keys"


class AcsSigner:
    """A fresh RSA key that signs tokens as ACS does, named `kid` in the JWKS."""

    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or uuid.uuid4().hex
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def jwk(self) -> dict[str, Any]:
        """The public key as a JWKS entry."""
        public = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def token(
        self,
        audience: str,
        *,
        issuer: str = ACS_ISSUER,
        lifetime_s: int = 300,
        issued_ago_s: int = 0,
    ) -> str:
        """A signed token; `issued_ago_s` past `lifetime_s` makes it expired."""
        issued = int(time.time()) - issued_ago_s
        claims = {"iss": issuer, "aud": audience, "iat": issued, "nbf": issued}
        claims["exp"] = issued + lifetime_s
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})


class JwksServer:
    """Serves `GET /calling/keys` over plain HTTP on loopback, counting fetches in `hits`.

    `signers` is a plain list: append to it to rotate a key in.
    """

    def __init__(self, *signers: AcsSigner) -> None:
        self.signers = list(signers)
        self.hits = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_port}{KEYS_PATH}"

    def start(self) -> JwksServer:
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != KEYS_PATH:
                    self.send_error(404)
                    return
                with jwks._lock:
                    jwks.hits += 1
                body = json.dumps({"keys": [signer.jwk for signer in jwks.signers]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() waits for the loop to notice
            name="fake-acs-jwks",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
