"""The channel vectors against RFC 9180: cryptography's HPKE and an independent oracle.

Spec: spec/14-channels.md, spec/10-test-vectors.md#channel-vectors

tests/data/rfc9180/base-x25519.json holds RFC 9180's published base-mode
vectors for DHKEM(X25519, HKDF-SHA256) with HKDF-SHA256 and AES-128-GCM or
ChaCha20-Poly1305 (see its README). Both the HPKE that SDL uses
(``cryptography``) and tests/hpke_oracle.py must reproduce them; the oracle
then opens SDL's committed key vectors without ``cryptography.hpke``, and
every committed frame vector is rebuilt here byte by byte from the layout of
spec/14-channels.md, without ``protocol.channels``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from protocol.channels import SUITES, key_info
from reference.oracle import channel, vectors
from tests import hpke_oracle

ROOT = Path(__file__).resolve().parent.parent
RFC = json.loads((ROOT / "tests" / "data" / "rfc9180" / "base-x25519.json").read_text())
COMMITTED = ROOT / "spec" / "vectors" / "channel"
_AEAD = {1: hpke.AEAD.AES_128_GCM, 3: hpke.AEAD.CHACHA20_POLY1305}


def _b(text: str) -> bytes:
    return bytes.fromhex(text)


def _committed(operation: str) -> list[dict[str, Any]]:
    objs = [json.loads(p.read_text()) for p in sorted(COMMITTED.glob("*.json"))]
    return [o for o in objs if o["operation"] == operation]


def test_the_rfc_subset_is_base_mode_x25519_with_both_aeads() -> None:
    assert sorted((v["mode"], v["kem_id"], v["kdf_id"], v["aead_id"]) for v in RFC) == [
        (0, 0x20, 1, 1),
        (0, 0x20, 1, 3),
    ]


@pytest.mark.parametrize("v", RFC, ids=lambda v: f"aead{v['aead_id']}")
def test_cryptography_hpke_opens_the_rfc_vectors(v: dict[str, Any]) -> None:
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, _AEAD[v["aead_id"]])
    sk = x25519.X25519PrivateKey.from_private_bytes(_b(v["skRm"]))
    assert sk.public_key().public_bytes_raw().hex() == v["pkRm"]
    first = v["encryptions"][0]
    assert first["sequence_number"] == 0  # single-shot opens sequence number 0 only
    pt = rust_openssl.hpke._decrypt_with_aad(
        suite, _b(v["enc"] + first["ct"]), sk, info=_b(v["info"]), aad=_b(first["aad"])
    )
    assert pt.hex() == first["pt"]


@pytest.mark.parametrize("v", RFC, ids=lambda v: f"aead{v['aead_id']}")
def test_the_oracle_reproduces_the_rfc_vectors(v: dict[str, Any]) -> None:
    aead = v["aead_id"]
    assert hpke_oracle.derive_key_pair(_b(v["ikmR"])) == (_b(v["skRm"]), _b(v["pkRm"]))
    assert hpke_oracle.derive_key_pair(_b(v["ikmE"])) == (_b(v["skEm"]), _b(v["pkEm"]))
    shared, enc = hpke_oracle.encap(_b(v["pkRm"]), _b(v["ikmE"]))
    assert (shared.hex(), enc.hex()) == (v["shared_secret"], v["enc"])
    assert hpke_oracle.decap(enc, _b(v["skRm"])).hex() == v["shared_secret"]
    ctx = hpke_oracle.key_schedule(aead, shared, _b(v["info"]))
    assert (ctx.key.hex(), ctx.base_nonce.hex()) == (v["key"], v["base_nonce"])
    assert ctx.exporter_secret.hex() == v["exporter_secret"]
    for e in v["encryptions"]:
        seq, aad, pt = e["sequence_number"], _b(e["aad"]), _b(e["pt"])
        assert ctx.seal(seq, aad, pt).hex() == e["ct"], seq
        assert ctx.open(seq, aad, _b(e["ct"])) == pt
    first = v["encryptions"][0]
    sealed = hpke_oracle.seal_base(
        aead, _b(v["pkRm"]), _b(v["info"]), aad=_b(first["aad"]), pt=_b(first["pt"]),
        ikm_e=_b(v["ikmE"]),
    )  # fmt: skip
    assert sealed == (_b(v["enc"]), _b(first["ct"]))


def test_cryptography_opens_what_the_oracle_seals_under_sdl_info() -> None:
    """The oracle seals with a chosen ephemeral key; SDL's HPKE must open it."""
    for suite in (SUITES["x25519-aes128gcm"], SUITES["x25519-chacha20poly1305"]):
        sk = bytes(range(1, 33))
        header_info = key_info(bytes(51))
        channel_key = bytes(range(suite.key_size))
        enc, ct = hpke_oracle.seal_base(
            suite.aead_id, hpke_oracle.public_key(sk), header_info, aad=b"", pt=channel_key,
            ikm_e=bytes(32),
        )  # fmt: skip
        key = x25519.X25519PrivateKey.from_private_bytes(sk)
        assert suite.hpke().decrypt(enc + ct, key, info=header_info) == channel_key


KEYS = _committed("key")
FRAMES = _committed("frame")
X25519_KEYS = [o for o in KEYS if o["kem_id"] == hpke_oracle.KEM_X25519]

# spec/14-channels.md#header and #channel-keys, written out independently of protocol/.
_KINDS = {"share": 1, "report": 2, "decision": 3, "partial_sum": 4, "abort": 5}
_ROLES = {"contributor": 1, "aggregator": 2, "coordinator": 3, "receiver": 4}
_IDS = {
    "x25519-aes128gcm": (0x0020, 0x0001, 0x0001),
    "x25519-chacha20poly1305": (0x0020, 0x0001, 0x0003),
    "mlkem768x25519-aes128gcm": (0x647A, 0x0001, 0x0001),
}


def _frame_header(f: dict[str, Any]) -> bytes:
    kem, kdf, aead = _IDS[f["suite"]]
    return (
        b"SDLF" + bytes([1]) + struct.pack("<HHH", kem, kdf, aead) + _b(f["session"])
        + struct.pack("<QH", f["round"], f["stage"])
        + bytes([_KINDS[f["kind"]], _ROLES[f["role"]]])
        + struct.pack("<II", f["sender"], f["recipient"])
    )  # fmt: skip


def _key_header(f: dict[str, Any]) -> bytes:
    kem, kdf, aead = _IDS[f["suite"]]
    return (
        b"SDLK" + bytes([1]) + struct.pack("<HHH", kem, kdf, aead) + _b(f["session"])
        + struct.pack("<II", f["sender"], f["recipient"])
    )  # fmt: skip


def test_there_are_key_and_frame_vectors_for_every_suite() -> None:
    assert sorted(o["suite"] for o in KEYS) == sorted(SUITES)
    assert sorted(o["aead_id"] for o in X25519_KEYS) == [1, 3]
    kinds = {"share", "decision", "partial_sum", "abort"}
    for name in SUITES:
        assert {o["header_fields"]["kind"] for o in FRAMES if o["suite"] == name} == kinds


@pytest.mark.parametrize("obj", X25519_KEYS, ids=lambda o: o["suite"])
def test_the_oracle_opens_the_committed_x25519_key_vectors(obj: dict[str, Any]) -> None:
    """Independent of cryptography.hpke: pkRm from skRm, and ct opens to the channel key."""
    assert hpke_oracle.public_key(_b(obj["skRm"])).hex() == obj["pkRm"]
    raw = _key_header(obj["key_header_fields"])
    assert raw.hex() == obj["key_header"] and len(raw) == 51
    assert obj["info"] == (b"sdl.channel.key-info\x00" + raw).hex()
    [e] = obj["encryptions"]
    pt = hpke_oracle.open_base(
        obj["aead_id"], _b(obj["enc"]), _b(obj["skRm"]), _b(obj["info"]),
        aad=_b(e["aad"]), ct=_b(e["ct"]),
    )  # fmt: skip
    assert pt.hex() == e["pt"] and len(pt) == SUITES[obj["suite"]].key_size
    assert obj["key_frame"] == obj["key_header"] + obj["enc"] + e["ct"] + obj["key_frame_signature"]
    with pytest.raises(InvalidTag):  # another recipient's key does not open it
        hpke_oracle.open_base(
            obj["aead_id"], _b(obj["enc"]), bytes(range(32)), _b(obj["info"]),
            aad=_b(e["aad"]), ct=_b(e["ct"]),
        )  # fmt: skip


@pytest.mark.parametrize("obj", FRAMES, ids=lambda o: f"{o['suite']}-{o['header_fields']['kind']}")
def test_each_frame_vector_is_rebuilt_from_the_spec_layout(obj: dict[str, Any]) -> None:
    """header || nonce || AEAD(key, nonce, pt, "sdl.channel.frame" || 0x00 || header)."""
    header = _frame_header(obj["header_fields"])
    assert len(header) == 63 and header.hex() == obj["header"]
    aad = b"sdl.channel.frame\x00" + header
    assert aad.hex() == obj["aad"]
    key, nonce = _b(obj["key"]), _b(obj["nonce"])
    assert len(nonce) == 12 and len(key) == SUITES[obj["suite"]].key_size
    aead_id = _IDS[obj["suite"]][2]
    aead = ChaCha20Poly1305(key) if aead_id == 0x0003 else AESGCM(key)
    ct = aead.encrypt(nonce, _b(obj["pt"]), aad)
    assert ct.hex() == obj["ct"]
    assert (header + nonce + ct).hex() == obj["frame"]
    assert aead.decrypt(nonce, ct, aad).hex() == obj["pt"]


def test_the_key_vector_carries_the_key_of_the_share_frames() -> None:
    """Node 2's key frame to node 3 carries the key node 2's share to node 3 is sealed under."""
    for k in KEYS:
        [share] = [
            o for o in FRAMES if o["suite"] == k["suite"] and o["header_fields"]["kind"] == "share"
        ]
        fields = share["header_fields"]
        assert (fields["sender"], fields["recipient"]) == (
            k["key_header_fields"]["sender"], k["key_header_fields"]["recipient"],
        )  # fmt: skip
        assert share["key"] == k["encryptions"][0]["pt"]


def test_the_key_vectors_use_rfc9180_field_names() -> None:
    for obj in KEYS:
        for key in ("mode", "kem_id", "kdf_id", "aead_id", "info", "skRm", "pkRm", "enc"):
            assert key in obj, (obj["suite"], key)
        assert [sorted(e) for e in obj["encryptions"]] == [["aad", "ct", "pt"]]
        suite = SUITES[obj["suite"]]
        assert len(_b(obj["enc"])) == suite.enc_size
        assert len(_b(obj["pkRm"])) == suite.public_key_size
        assert len(_b(obj["key_frame"])) == suite.key_frame_size


def test_every_negative_names_its_fault_and_opens_in_order(tmp_path: Path) -> None:
    """Changing the expected fault of one negative fails check, naming the fault."""
    bad = sorted(p.name for p in COMMITTED.glob("*_bad_*.json"))
    assert len(bad) >= 30
    faults = {json.loads((COMMITTED / n).read_text())["fault"] for n in bad}
    assert {
        "tag", "header", "truncated", "signature", "roster", "statement", "plaintext", "key",
        "suite", "session-key",
    } <= faults  # fmt: skip
    target = tmp_path / "channel"
    target.mkdir()
    path = COMMITTED / "open_bad_header_round.json"
    obj = json.loads(path.read_text())
    obj["fault"] = "tag"  # the header is altered, but the context check comes first
    (target / path.name).write_text(vectors.dumps(obj))
    [result] = vectors.check(tmp_path)
    assert not result.ok and "expected 'tag', got 'header'" in result.problems[0]


def test_an_altered_key_ciphertext_fails_check(tmp_path: Path) -> None:
    obj = json.loads((COMMITTED / "key_x25519-aes128gcm.json").read_text())
    ct = bytearray(_b(obj["encryptions"][0]["ct"]))
    ct[0] ^= 1
    obj["encryptions"][0]["ct"] = ct.hex()
    (tmp_path / "x.json").write_text(vectors.dumps(obj))
    [result] = vectors.check(tmp_path)
    assert any("HPKE open failed" in p for p in result.problems), result.problems


def test_an_altered_frame_ciphertext_fails_check(tmp_path: Path) -> None:
    obj = json.loads((COMMITTED / "frame_x25519-aes128gcm_share.json").read_text())
    ct = bytearray(_b(obj["ct"]))
    ct[0] ^= 1
    obj["ct"] = ct.hex()
    (tmp_path / "x.json").write_text(vectors.dumps(obj))
    [result] = vectors.check(tmp_path)
    assert any(p.startswith("ct (AEAD of pt)") for p in result.problems), result.problems
    assert any("AEAD open failed" in p for p in result.problems), result.problems


def test_masking_hides_only_the_randomized_fields() -> None:
    fresh = dict(channel.cases())
    assert sorted(fresh) == sorted(p.relative_to(COMMITTED.parent).as_posix()
                                   for p in COMMITTED.glob("*.json"))  # fmt: skip
    for rel, obj in fresh.items():
        committed = json.loads((COMMITTED.parent / rel).read_text())
        assert channel.masked(committed) == channel.masked(obj), rel
        assert set(obj["randomized"]) <= set(channel.RANDOMIZED)
        if obj["operation"] == "key":
            assert obj["randomized"] == ["ct", "enc", "key_frame", "key_frame_signature"]
            assert committed["skRm"] == obj["skRm"] and committed["info"] == obj["info"]
            assert committed["encryptions"][0]["pt"] == obj["encryptions"][0]["pt"]
        elif obj["operation"] in ("frame", "open", "verify_session_key"):
            # Frames and their negatives are deterministic: equal without masking.
            assert obj["randomized"] == [] and committed == obj, rel
