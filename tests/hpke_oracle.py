"""An independent RFC 9180 base-mode HPKE, for tests only: DHKEM(X25519, HKDF-SHA256).

Built from the RFC's text (sections 4, 5.1, 5.2, 7.1.3) on ``cryptography``'s
X25519, HMAC-SHA256, AES-GCM and ChaCha20-Poly1305 primitives, without its
``hpke`` module, so that tests can check SDL's channel vectors against a
second implementation. It supports exactly what SDL's X25519 suites use:
KEM 0x0020, KDF 0x0001 (HKDF-SHA256), AEAD 0x0001 (AES-128-GCM) and 0x0003
(ChaCha20-Poly1305), mode 0 (base). Not constant-time, not for production.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

KEM_X25519, KDF_HKDF_SHA256 = 0x0020, 0x0001
_AEADS = {0x0001: (AESGCM, 16), 0x0003: (ChaCha20Poly1305, 32)}
_NONCE = 12
_NSECRET = 32  # Nsecret of DHKEM(X25519, HKDF-SHA256) = Nh of HKDF-SHA256
MODE_BASE = 0


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + block, i + 1
    return out[:length]


def labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    """RFC 9180 section 4: ``Extract(salt, "HPKE-v1" || suite_id || label || ikm)``."""
    return _extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    """RFC 9180 section 4:
    ``Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L)``."""
    return _expand(prk, struct.pack(">H", length) + b"HPKE-v1" + suite_id + label + info, length)


_KEM_ID = b"KEM" + struct.pack(">H", KEM_X25519)


def derive_key_pair(ikm: bytes) -> tuple[bytes, bytes]:
    """RFC 9180 section 7.1.3 (X25519): ``(skX, pkX)`` serialized."""
    prk = labeled_extract(_KEM_ID, b"", b"dkp_prk", ikm)
    sk = labeled_expand(_KEM_ID, prk, b"sk", b"", 32)
    return sk, public_key(sk)


def public_key(sk: bytes) -> bytes:
    return x25519.X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes_raw()


def _dh(sk: bytes, pk: bytes) -> bytes:
    priv = x25519.X25519PrivateKey.from_private_bytes(sk)
    return priv.exchange(x25519.X25519PublicKey.from_public_bytes(pk))


def _extract_and_expand(dh: bytes, kem_context: bytes) -> bytes:
    prk = labeled_extract(_KEM_ID, b"", b"eae_prk", dh)
    return labeled_expand(_KEM_ID, prk, b"shared_secret", kem_context, _NSECRET)


def encap(pk_r: bytes, ikm_e: bytes) -> tuple[bytes, bytes]:
    """RFC 9180 section 4.1 Encap with the ephemeral key from ``DeriveKeyPair(ikm_e)``:
    ``(shared_secret, enc)``."""
    sk_e, enc = derive_key_pair(ikm_e)
    return _extract_and_expand(_dh(sk_e, pk_r), enc + pk_r), enc


def decap(enc: bytes, sk_r: bytes) -> bytes:
    """RFC 9180 section 4.1 Decap: the shared secret."""
    return _extract_and_expand(_dh(sk_r, enc), enc + public_key(sk_r))


@dataclass(frozen=True)
class Context:
    """An HPKE context (RFC 9180 section 5.2): key, base nonce, and sequence number."""

    aead_id: int
    key: bytes
    base_nonce: bytes
    exporter_secret: bytes

    def _nonce(self, seq: int) -> bytes:
        return bytes(
            a ^ b for a, b in zip(self.base_nonce, seq.to_bytes(_NONCE, "big"), strict=True)
        )

    def seal(self, seq: int, aad: bytes, pt: bytes) -> bytes:
        return _AEADS[self.aead_id][0](self.key).encrypt(self._nonce(seq), pt, aad)

    def open(self, seq: int, aad: bytes, ct: bytes) -> bytes:
        """Raises ``cryptography.exceptions.InvalidTag`` when ``ct`` does not open."""
        return _AEADS[self.aead_id][0](self.key).decrypt(self._nonce(seq), ct, aad)


def key_schedule(aead_id: int, shared_secret: bytes, info: bytes) -> Context:
    """RFC 9180 section 5.1 KeySchedule, mode base (no PSK)."""
    if aead_id not in _AEADS:
        raise ValueError(f"unsupported AEAD {aead_id:#06x}")
    suite_id = b"HPKE" + struct.pack(">HHH", KEM_X25519, KDF_HKDF_SHA256, aead_id)
    psk_id_hash = labeled_extract(suite_id, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(suite_id, b"", b"info_hash", info)
    context = bytes([MODE_BASE]) + psk_id_hash + info_hash
    secret = labeled_extract(suite_id, shared_secret, b"secret", b"")
    nk = _AEADS[aead_id][1]
    return Context(
        aead_id,
        labeled_expand(suite_id, secret, b"key", context, nk),
        labeled_expand(suite_id, secret, b"base_nonce", context, _NONCE),
        labeled_expand(suite_id, secret, b"exp", context, _NSECRET),
    )


def seal_base(
    aead_id: int, pk_r: bytes, info: bytes, *, aad: bytes, pt: bytes, ikm_e: bytes
) -> tuple[bytes, bytes]:
    """Single-shot SealBase (section 6.1) with a given ``ikm_e``: ``(enc, ct)``."""
    shared, enc = encap(pk_r, ikm_e)
    return enc, key_schedule(aead_id, shared, info).seal(0, aad, pt)


def open_base(
    aead_id: int, enc: bytes, sk_r: bytes, info: bytes, *, aad: bytes, ct: bytes
) -> bytes:
    """Single-shot OpenBase (section 6.1)."""
    return key_schedule(aead_id, decap(enc, sk_r), info).open(0, aad, ct)
