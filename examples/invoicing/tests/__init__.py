"""Tests of the invoicing service."""
