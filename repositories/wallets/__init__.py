"""Crypto wallets: the wallet repository, the chain vocabulary and gateway, the deposit scanner."""
