"""ACS's bearer JWTs, checked for real: RS256 keys from a JWKS on loopback, issuer, audience,
expiry, unknown and rotated keys, and a key server that does not answer."""

from __future__ import annotations

import time
import types

import jwt
import pytest
from jwt import jwks_client

from sessions_app.acs import tokens
from sessions_app.acs.tokens import AcsTokenRefused, bearer_token, verify_acs_request
from tests.fakes.acs_tokens import ACS_ISSUER, AcsSigner, JwksServer

AUDIENCE = "d3a9b1c2-0000-4b5e-8e1f-acs-resource-immutable-id"


@pytest.fixture(scope="module")
def signer() -> AcsSigner:
    return AcsSigner()  # RSA key generation is slow: one per module


@pytest.fixture(scope="module")
def stranger() -> AcsSigner:
    return AcsSigner()


@pytest.fixture(autouse=True)
def fresh_key_clients():
    tokens._keys.cache_clear()
    yield
    tokens._keys.cache_clear()


@pytest.fixture
def jwks(signer, settings):
    with JwksServer(signer) as server:
        settings.ACS_VERIFY_JWT = True
        settings.ACS_JWKS_URL = server.url
        settings.ACS_JWT_AUDIENCE = AUDIENCE
        yield server


def bearer(token: str) -> str:
    return f"Bearer {token}"


async def refusal(authorization: str | None) -> str:
    with pytest.raises(AcsTokenRefused) as caught:
        await verify_acs_request(authorization)
    return str(caught.value)


async def test_valid_token_passes(jwks, signer):
    await verify_acs_request(bearer(signer.token(AUDIENCE)))
    assert jwks.hits == 1


async def test_websocket_lifetime_token_passes(jwks, signer):
    await verify_acs_request(bearer(signer.token(AUDIENCE, lifetime_s=24 * 3600)))


async def test_keys_are_fetched_once_for_many_requests(jwks, signer):
    for _ in range(3):
        await verify_acs_request(bearer(signer.token(AUDIENCE)))
    assert jwks.hits == 1


@pytest.mark.parametrize(
    "scheme",
    ["Bearer", "bearer", "BEARER"],
)
async def test_bearer_scheme_is_case_insensitive(jwks, signer, scheme):
    await verify_acs_request(f"{scheme} {signer.token(AUDIENCE)}")


async def test_expired_token(jwks, signer):
    token = signer.token(AUDIENCE, lifetime_s=300, issued_ago_s=600)
    assert await refusal(bearer(token)) == "token expired"


async def test_token_within_clock_skew_leeway_passes(jwks, signer):
    token = signer.token(AUDIENCE, lifetime_s=300, issued_ago_s=300 + tokens.LEEWAY_S // 2)
    await verify_acs_request(bearer(token))


async def test_wrong_audience(jwks, signer):
    token = signer.token("another-acs-resource-id")
    assert await refusal(bearer(token)) == "token for another audience"


async def test_wrong_issuer(jwks, signer):
    token = signer.token(AUDIENCE, issuer="https://attacker.example.test")
    assert await refusal(bearer(token)) == "token from another issuer"


async def test_key_not_in_the_jwks(jwks, stranger):
    assert await refusal(bearer(stranger.token(AUDIENCE))) == "invalid token"


async def test_known_kid_but_signed_by_another_key(jwks, signer):
    impostor = AcsSigner(kid=signer.kid)  # claims the published key's name
    assert await refusal(bearer(impostor.token(AUDIENCE))) == "invalid token"


async def test_tampered_claims(jwks, signer):
    header, _, signature = signer.token(AUDIENCE).split(".")
    forged = jwt.encode(
        {"iss": ACS_ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "sub": "admin"},
        "x" * 32,
        algorithm="HS256",
    ).split(".")[1]
    assert await refusal(bearer(f"{header}.{forged}.{signature}")) == "invalid token"


async def test_hs256_token_with_a_known_kid(jwks, signer):
    # The classic algorithm confusion: an HMAC "signed" with something public.
    token = jwt.encode(
        {"iss": ACS_ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300},
        "public-but-long-enough-secret-for-hs256",
        algorithm="HS256",
        headers={"kid": signer.kid},
    )
    assert await refusal(bearer(token)) == "invalid token"


async def test_unsigned_token_with_a_known_kid(jwks, signer):
    token = jwt.encode(
        {"iss": ACS_ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300},
        None,
        algorithm="none",
        headers={"kid": signer.kid},
    )
    assert await refusal(bearer(token)) == "invalid token"


async def test_token_without_kid(jwks, signer):
    token = jwt.encode(
        {"iss": ACS_ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300},
        signer.private_key,
        algorithm="RS256",
    )
    assert await refusal(bearer(token)) == "invalid token"


@pytest.mark.parametrize(
    "missing",
    ["exp", "aud", "iss"],
)
async def test_token_missing_a_required_claim(jwks, signer, missing):
    claims = {"iss": ACS_ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300}
    del claims[missing]
    token = jwt.encode(claims, signer.private_key, algorithm="RS256", headers={"kid": signer.kid})
    assert await refusal(bearer(token)) == "invalid token"


async def test_token_not_yet_valid(jwks, signer):
    token = signer.token(AUDIENCE, issued_ago_s=-3600)  # issued an hour from now
    assert await refusal(bearer(token)) == "invalid token"


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "...", "Bearer"],
    ids=["word", "three-parts", "empty-signature", "dots", "scheme-twice"],
)
async def test_garbage_token(jwks, token):
    assert await refusal(bearer(token)) == "invalid token"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc", "abc"],
    ids=["none", "empty", "scheme-only", "scheme-space", "scheme-spaces", "basic", "token", "bare"],
)
async def test_missing_bearer_token(jwks, authorization):
    assert await refusal(authorization) == "missing bearer token"
    assert jwks.hits == 0  # refused before any key is fetched


def test_bearer_token_is_stripped():
    assert bearer_token("Bearer  abc.def.ghi ") == "abc.def.ghi"


async def test_refusals_never_echo_the_token(jwks, signer, stranger):
    for token in (
        stranger.token(AUDIENCE),
        signer.token("another-audience"),
        signer.token(AUDIENCE, issued_ago_s=3600),
        "garbage-token-value",
    ):
        message = await refusal(bearer(token))
        assert token not in message
        assert token.split(".")[0] not in message


async def test_jwks_server_down(signer, settings, caplog):
    server = JwksServer(signer).start()
    url = server.url
    server.stop()
    settings.ACS_VERIFY_JWT = True
    settings.ACS_JWKS_URL = url
    settings.ACS_JWT_AUDIENCE = AUDIENCE
    assert await refusal(bearer(signer.token(AUDIENCE))) == "signing keys unavailable"
    assert "signing keys unavailable" in caplog.text


async def test_jwks_url_not_found(jwks, signer, settings):
    settings.ACS_JWKS_URL = jwks.url.replace("/calling/keys", "/nowhere")
    assert await refusal(bearer(signer.token(AUDIENCE))) == "signing keys unavailable"


async def test_key_rotation_is_picked_up_once_the_refetch_cooldown_passed(
    jwks, signer, monkeypatch
):
    # PyJWT >= 2.1x refetches for an unknown kid at most once per `cooldown_duration` (30 s by
    # default) after a successful fetch: move PyJWKClient's clock past it.
    await verify_acs_request(bearer(signer.token(AUDIENCE)))
    rotated = AcsSigner()
    jwks.signers.append(rotated)
    if hasattr(tokens._keys(jwks.url), "cooldown_duration"):
        real = time.monotonic
        later = types.SimpleNamespace(monotonic=lambda: real() + 3600)
        monkeypatch.setattr(jwks_client, "time", later)
    await verify_acs_request(bearer(rotated.token(AUDIENCE)))
    assert jwks.hits == 2
    await verify_acs_request(bearer(signer.token(AUDIENCE)))


async def test_key_retired_from_the_jwks_is_refused(signer, stranger, settings):
    with JwksServer(stranger) as server:
        settings.ACS_VERIFY_JWT = True
        settings.ACS_JWKS_URL = server.url
        settings.ACS_JWT_AUDIENCE = AUDIENCE
        await verify_acs_request(bearer(stranger.token(AUDIENCE)))
        assert await refusal(bearer(signer.token(AUDIENCE))) == "invalid token"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic dXNlcjpwYXNz", "Bearer garbage"],
    ids=["none", "empty", "basic", "garbage"],
)
async def test_verification_off_accepts_anything(settings, authorization):
    settings.ACS_VERIFY_JWT = False
    settings.ACS_JWKS_URL = "http://127.0.0.1:9/calling/keys"  # never asked
    await verify_acs_request(authorization)


async def test_cached_keys_outlive_a_jwks_outage(signer, settings):
    server = JwksServer(signer).start()
    settings.ACS_VERIFY_JWT = True
    settings.ACS_JWKS_URL = server.url
    settings.ACS_JWT_AUDIENCE = AUDIENCE
    await verify_acs_request(bearer(signer.token(AUDIENCE)))
    server.stop()
    await verify_acs_request(bearer(signer.token(AUDIENCE)))  # served from the cached key set
    assert server.hits == 1
