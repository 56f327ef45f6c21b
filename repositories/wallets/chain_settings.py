"""Per-chain settings: node URL, confirmation depth, token contracts, scan sizes.

Read from ``TENANCY_CHAINS`` as JSON, or one field at a time with ``__`` as the
nesting delimiter::

    TENANCY_CHAINS__BASE__RPC_URL=https://node.example/rpc
    TENANCY_CHAINS__BASE__CONFIRMATIONS=12
    TENANCY_CHAINS__BASE__TOKENS='{"USDC": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}'

Chain names are the ``wallets.chain`` values, so they are lower-case and short.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from repositories.wallets.chain import NATIVE, parse_address
from tenancy.errors import InvalidData

_CHAIN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class ChainConfig(BaseModel):
    """How to reach and follow one chain."""

    model_config = ConfigDict(frozen=True)

    rpc_url: str | None = Field(
        default=None, description="HTTP JSON-RPC endpoint of the node (production)."
    )
    chain_id: int | None = Field(
        default=None, description="Expected chain id; the gateway refuses a node on another chain."
    )
    confirmations: int = Field(
        default=12, ge=1, description="Blocks (the including one counted) before 'confirmed'."
    )
    tokens: dict[str, str] = Field(
        default_factory=dict,
        description="ERC-20 contracts followed, symbol -> EIP-55 address (stored lower-case).",
    )
    start_block: int = Field(default=0, ge=0, description="First block the deposit scan reads.")
    scan_batch_blocks: int = Field(
        default=200, ge=1, description="Most blocks one sync_deposits pass reads."
    )
    reorg_depth: int = Field(
        default=64, ge=1, description="Scanned block hashes kept to detect reorganisations."
    )
    rpc_concurrency: int = Field(default=8, ge=1, description="Parallel requests to the node.")
    request_timeout: float = Field(default=10.0, gt=0, description="Seconds per RPC request.")

    @field_validator("tokens")
    @classmethod
    def _tokens_are_addresses(cls, tokens: dict[str, str]) -> dict[str, str]:
        try:
            return {symbol: parse_address(address) for symbol, address in tokens.items()}
        except InvalidData as exc:
            raise ValueError(f"token contract: {exc}") from None

    def token_addresses(self) -> frozenset[str]:
        """Return the followed token contracts, lower-case."""
        return frozenset(self.tokens.values())

    def is_known_asset(self, asset: str) -> bool:
        """Return whether ``asset`` is the native coin or a followed token contract."""
        return asset == NATIVE or asset in self.token_addresses()


class ChainSettings(BaseSettings):
    """Every chain the service follows, by name (``TENANCY_CHAINS``)."""

    model_config = SettingsConfigDict(
        env_prefix="TENANCY_", env_nested_delimiter="__", extra="ignore"
    )

    chains: dict[str, ChainConfig] = Field(default_factory=dict)

    @field_validator("chains")
    @classmethod
    def _names_fit_the_column(cls, chains: dict[str, ChainConfig]) -> dict[str, ChainConfig]:
        for name in chains:
            if not _CHAIN_NAME.fullmatch(name):
                raise ValueError(f"chain name {name!r} must be 1-32 of [a-z0-9_-]")
        return chains

    def get(self, chain: str) -> ChainConfig:
        """Return the settings of ``chain``.

        Raises:
            InvalidData: no such chain is configured.
        """
        config = self.chains.get(chain)
        if config is None:
            raise InvalidData(f"unknown chain {chain!r}")
        return config
