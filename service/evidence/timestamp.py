"""RFC 3161 ``TimeStampReq`` over the manifest (``manifest.tsq``), built and read with asn1crypto.

The pack carries the request, not a token: whoever wants a trusted time sends it to a TSA of their
choice (``openssl ts -query -in manifest.tsq -text`` shows it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from asn1crypto import tsp


@dataclass(frozen=True, slots=True)
class TimestampRequest:
    version: int
    hash_algorithm: str  # "sha256"
    digest: bytes
    nonce: int | None
    cert_req: bool


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
