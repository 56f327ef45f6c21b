"""The ``tenancy`` command line."""

from tenancy.cli.command import main

__all__ = ["main"]
