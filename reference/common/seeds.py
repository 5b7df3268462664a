"""Where seeds come from: the OS CSPRNG in production, the caller when deterministic.

Spec: spec/03-xof.md#seeds
"""

from __future__ import annotations

import secrets

from protocol.errors import ParameterError
from protocol.xof import SEED_SIZE, Seed, Tag, as_seed, derive_seed


def fresh_seed() -> Seed:
    """A new seed from the operating system's CSPRNG."""
    return Seed(secrets.token_bytes(SEED_SIZE))


def seed_from_hex(text: str) -> Seed:
    """A seed from a hex string; short strings are expanded through the XOF.

    ``--seed 1`` is convenient on a command line, so any hex string of 1 to
    64 digits is accepted: exactly 64 digits are the seed itself; anything
    shorter is left-padded to 32 bytes and passed through
    ``derive_seed(·, Tag("cli.seed"))`` so that short seeds still give
    unrelated streams.

    Raises:
        ParameterError: if ``text`` is not 1 to 64 hex digits.
    """
    digits = text.strip().lower().removeprefix("0x")
    if not 1 <= len(digits) <= 2 * SEED_SIZE or any(c not in "0123456789abcdef" for c in digits):
        raise ParameterError(f"seed must be 1 to {2 * SEED_SIZE} hex digits; got {text!r}")
    if len(digits) == 2 * SEED_SIZE:
        return as_seed(bytes.fromhex(digits))
    return derive_seed(as_seed(bytes.fromhex(digits.rjust(2 * SEED_SIZE, "0"))), Tag("cli.seed"))
