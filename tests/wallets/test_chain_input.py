"""Parsing of addresses, tx hashes and chain settings; the local signer keeps its keys."""

from __future__ import annotations

import uuid

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from repositories.wallets.chain import NATIVE, UnsignedTransaction, parse_address, parse_tx_hash
from repositories.wallets.chain_settings import ChainConfig, ChainSettings
from repositories.wallets.signer import LocalKeySigner
from tenancy.errors import InvalidData, IsolationViolation

CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
ORG = uuid.uuid4()


def test_checksummed_address_is_stored_lower_case() -> None:
    assert parse_address(CHECKSUMMED) == CHECKSUMMED.lower()


def test_address_with_a_wrong_checksum_is_invalid() -> None:
    wrong = CHECKSUMMED[:-1] + CHECKSUMMED[-1].swapcase()
    with pytest.raises(InvalidData, match="checksum"):
        parse_address(wrong)


def test_address_without_checksum_is_invalid() -> None:
    with pytest.raises(InvalidData, match="checksum"):
        parse_address(CHECKSUMMED.lower())


@pytest.mark.parametrize(
    "value", ["", "0x", "0x1234", CHECKSUMMED[2:], CHECKSUMMED + "00", "0xZZ" + "0" * 38, None, 42]
)
def test_malformed_address_is_invalid(value: object) -> None:
    with pytest.raises(InvalidData, match="40 hex digits"):
        parse_address(value)


def test_tx_hash_is_normalised_to_lower_case() -> None:
    assert parse_tx_hash("0x" + "AB" * 32) == "0x" + "ab" * 32


@pytest.mark.parametrize("value", ["", "0x" + "ab" * 31, "ab" * 32, "0x" + "g" * 64, None])
def test_malformed_tx_hash_is_invalid(value: object) -> None:
    with pytest.raises(InvalidData, match="64 hex digits"):
        parse_tx_hash(value)


def test_unknown_chain_is_invalid() -> None:
    with pytest.raises(InvalidData, match="unknown chain 'dogecoin'"):
        ChainSettings(chains={"base": ChainConfig()}).get("dogecoin")


def test_chain_settings_are_read_from_nested_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TENANCY_CHAINS__BASE__RPC_URL", "https://node.invalid/rpc")
    monkeypatch.setenv("TENANCY_CHAINS__BASE__CONFIRMATIONS", "20")
    monkeypatch.setenv("TENANCY_CHAINS__BASE__TOKENS", f'{{"USDC": "{USDC_BASE}"}}')

    config = ChainSettings().get("base")

    assert (config.rpc_url, config.confirmations) == ("https://node.invalid/rpc", 20)
    assert config.token_addresses() == {USDC_BASE.lower()}
    assert config.is_known_asset(USDC_BASE.lower())
    assert config.is_known_asset(NATIVE)


def test_token_contract_must_be_checksummed() -> None:
    with pytest.raises(ValueError, match="token contract"):
        ChainConfig(tokens={"USDC": USDC_BASE.lower()})


def test_chain_name_must_fit_the_wallets_column() -> None:
    with pytest.raises(ValueError, match="chain name"):
        ChainSettings(chains={"Not A Chain!": ChainConfig()})


def _transaction(sender: str) -> UnsignedTransaction:
    return UnsignedTransaction(
        chain_id=1,
        nonce=0,
        sender=sender,
        to=CHECKSUMMED.lower(),
        value=1,
        data=b"",
        gas=21_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
    )


async def test_signer_refuses_a_sender_whose_key_it_lacks() -> None:
    signer = LocalKeySigner()
    signer.add_key(ORG, Account.create().key)
    with pytest.raises(IsolationViolation, match="no signing key"):
        await signer.sign(ORG, _transaction(Account.create().address.lower()))


async def test_signed_hash_is_the_hash_of_the_raw_bytes() -> None:
    account = Account.create()
    signed = await _signer_of(account.key).sign(ORG, _transaction(account.address.lower()))
    assert signed.tx_hash == "0x" + keccak(signed.raw).hex()


async def test_signature_recovers_to_the_sender() -> None:
    account = Account.create()
    signed = await _signer_of(account.key).sign(ORG, _transaction(account.address.lower()))
    assert Account.recover_transaction(signed.raw) == account.address


def test_signer_repr_never_shows_a_key() -> None:
    account = Account.create()
    signer = _signer_of(account.key)
    assert bytes(account.key).hex() not in repr(signer)
    assert signer.can_sign(ORG, account.address)


def _signer_of(key: bytes) -> LocalKeySigner:
    signer = LocalKeySigner()
    signer.add_key(ORG, key)
    return signer
