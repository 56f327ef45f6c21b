"""Proof of control of an address: an EIP-191 signed challenge bound to one organization.

An address is a public value: anyone can read it off the chain and type it into
a registration form. Registering it as a wallet routes its deposits to the
registering organization, so a watch-only address is accepted only with a
signature by its key over a challenge that names the organization, the chain
family and the address, and expires. A signature made for one organization
proves nothing for another (the message differs), and without the key no one
can make one. Addresses provisioned by the platform's ``Signer`` need no proof:
the signer created the key for that organization.

One EVM key controls its address on every EVM chain, so a proof is per chain
family (``EVM``), not per chain.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tenancy.extras import missing_extra

try:
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from eth_utils.address import to_checksum_address
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("chain", exc) from exc

from repositories.wallets.chain import parse_address
from tenancy.errors import IsolationViolation

#: The family of every chain this library follows (``Web3Gateway`` speaks EVM JSON-RPC).
EVM = "evm"
#: How long a challenge may be signed and used; a longer-lived one is refused.
CHALLENGE_TTL = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ControlChallenge:
    """What the holder of an address signs to prove control for one organization."""

    org_id: uuid.UUID
    family: str
    address: str
    nonce: str
    expires_at: datetime

    def message(self) -> str:
        """Return the text to sign (EIP-191 ``personal_sign``); it names everything it binds."""
        return (
            "Prove control of this address for tenancy custody.\n"
            f"Organization: {self.org_id}\n"
            f"Chain family: {self.family}\n"
            f"Address: {to_checksum_address(self.address)}\n"
            f"Nonce: {self.nonce}\n"
            f"Expires: {self.expires_at.isoformat()}"
        )


@dataclass(frozen=True, slots=True)
class ControlProof:
    """A challenge and the signature of its message by the address's key."""

    challenge: ControlChallenge
    signature: bytes


def new_challenge(
    org_id: uuid.UUID, address: str, *, family: str = EVM, now: datetime | None = None
) -> ControlChallenge:
    """Return a fresh challenge for ``org_id`` to prove control of ``address``.

    Raises:
        InvalidData: the address is malformed or its checksum is wrong.
    """
    issued = now or datetime.now(UTC)
    return ControlChallenge(
        org_id=org_id,
        family=family,
        address=parse_address(address),
        nonce=secrets.token_hex(16),
        expires_at=issued + CHALLENGE_TTL,
    )


def sign_challenge(challenge: ControlChallenge, key: str | bytes) -> ControlProof:
    """Return the proof ``key`` makes for ``challenge`` (what a wallet's holder runs)."""
    signed = Account.sign_message(encode_defunct(text=challenge.message()), private_key=key)
    return ControlProof(challenge, bytes(signed.signature))


def verify_control(
    proof: ControlProof,
    org_id: uuid.UUID,
    address: str,
    *,
    family: str = EVM,
    now: datetime | None = None,
) -> None:
    """Check that ``proof`` shows control of ``address`` for ``org_id`` now.

    Every refusal is the same error type: a caller learns which binding failed,
    never anything about another organization.

    Raises:
        InvalidData: the address is malformed or its checksum is wrong.
        IsolationViolation: the challenge names another organization, address or
            family, has expired or lives too long, or was not signed by the address's key.
    """
    stored = parse_address(address)
    challenge = proof.challenge
    at = now or datetime.now(UTC)
    if challenge.org_id != org_id:
        raise IsolationViolation("the proof of control was made for another organization")
    if challenge.address != stored or challenge.family != family:
        raise IsolationViolation("the proof of control was made for another address")
    # A challenge is not stored: the expiry bounds how long a signature can be reused,
    # so one that claims to live longer than a fresh challenge would is refused too.
    if not at < challenge.expires_at <= at + CHALLENGE_TTL:
        raise IsolationViolation("the proof of control has expired")
    try:
        signer = Account.recover_message(
            encode_defunct(text=challenge.message()), signature=proof.signature
        )
    except (ValueError, TypeError) as exc:
        raise IsolationViolation("the proof of control is not a valid signature") from exc
    if str(signer).lower() != stored:
        raise IsolationViolation("the proof of control was signed by another key")


__all__ = [
    "CHALLENGE_TTL",
    "EVM",
    "ControlChallenge",
    "ControlProof",
    "new_challenge",
    "sign_challenge",
    "verify_control",
]
