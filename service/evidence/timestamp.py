"""RFC 3161 trusted timestamps over the manifest, built and read with asn1crypto.

A pack carries ``manifest.tsq``, a ``TimeStampReq`` for sha256(manifest.json). ``robocall stamp``
sends it to a timestamp authority (TSA) and stores the reply as ``manifest.tsr``;
``robocall verify`` checks a stored reply: the TSA granted it, its imprint is sha256 of the
manifest, its nonce is the request's, the TSA's CMS signature over the token is valid and the
TSA certificate chains, through the certificates in the reply, to a root (which ``--tsa-ca``
pins; otherwise the root is only named). ``openssl ts -verify`` checks the same reply.
"""

from __future__ import annotations

import hashlib
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, tsp, x509
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pipeline.errors import RobocallError

TSQ_CONTENT_TYPE = "application/timestamp-query"
TSR_CONTENT_TYPE = "application/timestamp-reply"
DEFAULT_TIMEOUT_S = 30.0
MAX_REPLY_BYTES = 1_000_000  # a reply is a few KiB; anything bigger is not one
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


class TimestampError(RobocallError):
    """The TSA could not be reached, refused the request, or sent something that is no reply."""

    code = "timestamp_unavailable"
    status = 502


@dataclass(frozen=True, slots=True)
class TimestampRequest:
    version: int
    hash_algorithm: str  # "sha256"
    digest: bytes
    nonce: int | None
    cert_req: bool


@dataclass(frozen=True, slots=True)
class TimestampCheck:
    """The outcome of checking a ``TimeStampResp`` against the manifest and the request."""

    ok: bool
    problems: tuple[str, ...]  # empty when ok
    gen_time: datetime | None  # the time the TSA asserts, timezone-aware (UTC)
    tsa: str  # the signer certificate's subject, readable; "" if unknown
    serial_number: int | None  # the token's serial number
    root: str  # subject of the root the chain ends at; "" if it did not reach one
    root_trusted: bool  # the root is one of the CA certificates the caller pinned


def timestamp_request(digest: bytes, *, nonce: int | None = None) -> bytes:
    """DER ``TimeStampReq`` (RFC 3161 §2.4.1) for a sha256 ``digest``, asking for the TSA cert.

    Parameters
    ----------
    digest : bytes [32]
        sha256 of the data to timestamp (here: the bytes of ``manifest.json``).
    nonce : int, optional
        Random 63-bit nonce by default; the TSA echoes it to prove a fresh reply.
    """
    if len(digest) != 32:
        raise ValueError(f"digest must be 32 bytes (sha256), got {len(digest)}")
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256", "parameters": None},
                "hashed_message": digest,
            },
            "nonce": secrets.randbits(63) if nonce is None else nonce,
            "cert_req": True,
        }
    )
    der: bytes = request.dump()
    return der


def parse_timestamp_request(der: bytes) -> TimestampRequest:
    """Read a DER ``TimeStampReq``; raises ValueError when it is not one."""
    try:
        request = tsp.TimeStampReq.load(der, strict=True)
        imprint = request["message_imprint"]
        return TimestampRequest(
            version=int(request["version"].native == "v1"),
            hash_algorithm=str(imprint["hash_algorithm"]["algorithm"].native),
            digest=bytes(imprint["hashed_message"].native),
            nonce=request["nonce"].native,
            cert_req=bool(request["cert_req"].native),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a DER TimeStampReq: {exc}") from exc


def send_request(tsq: bytes, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bytes:
    """POST a ``TimeStampReq`` to a TSA (RFC 3161 §3.4, HTTP) and return the DER reply.

    Raises
    ------
    TimestampError
        Not an http(s) URL, unreachable, timed out, an HTTP error, or an oversized reply.
    """
    if not url.lower().startswith(("http://", "https://")):
        raise TimestampError(f"--tsa must be an http:// or https:// URL, got {url!r}")
    http = urllib.request.Request(
        url, data=tsq, method="POST", headers={"Content-Type": TSQ_CONTENT_TYPE}
    )
    try:
        with urllib.request.urlopen(http, timeout=timeout_s) as response:
            body: bytes = response.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TimestampError(f"the TSA at {url} answered HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TimestampError(f"cannot reach the TSA at {url}: {reason}") from exc
    if len(body) > MAX_REPLY_BYTES:
        raise TimestampError(f"the TSA at {url} sent more than {MAX_REPLY_BYTES} bytes")
    return body


def check_timestamp_reply(
    tsr: bytes,
    *,
    digest: bytes,
    nonce: int | None,
    trusted_roots: tuple[bytes, ...] = (),
) -> TimestampCheck:
    """Check an RFC 3161 ``TimeStampResp`` (DER) for ``digest``.

    Parameters
    ----------
    tsr : bytes
        The reply as the TSA sent it (``manifest.tsr``).
    digest : bytes [32]
        sha256 of the timestamped data (``manifest.json``).
    nonce : int or None
        The request's nonce; the reply must carry the same one.
    trusted_roots : tuple of bytes
        PEM or DER CA certificates to pin; the chain must end at one of them.
    """
    problems: list[str] = []
    try:
        response = tsp.TimeStampResp.load(tsr, strict=True)
        status = response["status"]["status"].native
    except (ValueError, TypeError, KeyError) as exc:
        return TimestampCheck(
            False, (f"not a DER TimeStampResp ({exc})",), None, "", None, "", False
        )
    if status not in ("granted", "granted_with_mods"):
        text = response["status"]["status_string"].native or []
        return TimestampCheck(
            False,
            (f"the TSA did not grant it: {status} {' '.join(text)}".strip(),),
            None,
            "",
            None,
            "",
            False,
        )
    try:
        signed = response["time_stamp_token"]["content"]
        info = signed["encap_content_info"]["content"].parsed
        imprint = info["message_imprint"]
        gen_time = info["gen_time"].native
        serial = int(info["serial_number"].native)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return TimestampCheck(
            False, (f"unreadable timestamp token ({exc})",), None, "", None, "", False
        )
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if algorithm != "sha256" or bytes(imprint["hashed_message"].native) != digest:
        problems.append("its imprint is not sha256(manifest.json): it timestamps other data")
    if nonce is not None and info["nonce"].native != nonce:
        problems.append("its nonce is not the request's (manifest.tsq): not the reply to it")
    certs = [c.chosen for c in signed["certificates"] or () if c.name == "certificate"]
    signer_info = signed["signer_infos"][0] if len(signed["signer_infos"]) else None
    signer = _signer_certificate(signer_info, certs) if signer_info is not None else None
    tsa = signer.subject.human_friendly if signer is not None else ""
    if signer is None or signer_info is None:
        problems.append("the TSA's certificate is not in the reply (request it with cert_req)")
        return TimestampCheck(False, tuple(problems), gen_time, tsa, serial, "", False)
    problems.extend(_signature_problems(signer_info, signer, signed))
    root, root_trusted, chain_problems = _chain(signer, certs, trusted_roots)
    problems.extend(chain_problems)
    return TimestampCheck(not problems, tuple(problems), gen_time, tsa, serial, root, root_trusted)


def _signer_certificate(
    signer_info: cms.SignerInfo, certs: list[x509.Certificate]
) -> x509.Certificate | None:
    sid = signer_info["sid"]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            ref = sid.chosen
            if cert.issuer == ref["issuer"] and cert.serial_number == ref["serial_number"].native:
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None


def _signature_problems(
    signer_info: cms.SignerInfo, signer: x509.Certificate, signed: cms.SignedData
) -> list[str]:
    """The CMS signature (RFC 5652 §5.4): message digest of the token, then the signature."""
    problems = []
    content = signed["encap_content_info"]["content"].contents
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        return [f"signed with an unsupported digest ({digest_name})"]
    attrs = signer_info["signed_attrs"]
    digests = [a["values"][0].native for a in attrs if a["type"].native == "message_digest"]
    if not digests or digests[0] != hashlib.new(digest_name, content).digest():
        problems.append("the TSA's signed digest does not match the token: the token was altered")
    if not _is_for_timestamping(signer):
        problems.append("the signer's certificate is not for timestamping (extended key usage)")
    signed_bytes = attrs.untag().dump()  # signed as a SET OF, not with the [0] tag (§5.4)
    if not _verify(signer.dump(), signer_info["signature"].native, signed_bytes, digest_name):
        problems.append("the TSA's signature over the token is NOT valid")
    return problems


def _is_for_timestamping(cert: x509.Certificate) -> bool:
    usages = cert.extended_key_usage_value
    return usages is not None and "time_stamping" in usages.native


def _verify(cert_der: bytes, signature: bytes, data: bytes, digest_name: str) -> bool:
    key = cx509.load_der_x509_certificate(cert_der).public_key()
    algorithm = _HASHES[digest_name]
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _chain(
    signer: x509.Certificate, certs: list[x509.Certificate], trusted_roots: tuple[bytes, ...]
) -> tuple[str, bool, list[str]]:
    """Walk issuer links from the signer to a self-signed root, checking each signature."""
    pinned = [_load_cert(pem) for pem in trusted_roots]
    pool = [cx509.load_der_x509_certificate(c.dump()) for c in certs] + pinned
    current = cx509.load_der_x509_certificate(signer.dump())
    for _ in range(8):  # a TSA chain is two or three certificates long
        if current in pinned:
            return current.subject.rfc4514_string(), True, []
        issuers = [c for c in pool if c.subject == current.issuer]
        issuer = next((c for c in issuers if _issued_by(current, c)), None)
        if issuer is None:
            why = "no certificate of its issuer" if not issuers else "its issuer did not sign it"
            return (
                "",
                False,
                [
                    f"the TSA's certificate chain is broken ({why}: "
                    f"{current.issuer.rfc4514_string()})"
                ],
            )
        if issuer == current:  # self-signed: the root
            root = current.subject.rfc4514_string()
            if pinned:
                return root, False, [f"the chain ends at {root}, not at the CA given (--tsa-ca)"]
            return root, False, []
        current = issuer
    return "", False, ["the TSA's certificate chain is too long"]


def _issued_by(cert: cx509.Certificate, issuer: cx509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _load_cert(data: bytes) -> cx509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        return cx509.load_pem_x509_certificate(data)
    return cx509.load_der_x509_certificate(data)
