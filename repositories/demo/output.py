"""Terminal rendering for ``tenancy demo``: numbered sections, two columns, event lines.

Plain text only (no colours, no terminal control codes), so the output reads the
same in a terminal, a CI log and the README.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from tenancy.relay.kafka import ReceivedEvent

INDENT = "   "
COLUMN_WIDTH = 44
NOTE_WIDTH = 110


def short(value: uuid.UUID | str) -> str:
    """Return the first eight hex digits of an id, enough to tell rows apart on screen."""
    return str(value)[:8]


def money(amount: int, currency: str) -> str:
    """Render minor units as ``12.34 USD`` (every demo currency has two decimals)."""
    return f"{amount // 100}.{amount % 100:02d} {currency}"


class Console:
    """Writes the demo's sections to a text stream, flushing every line."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._sections = 0
        # Log lines raised while a step runs, shown under that step's outcome line.
        self._notes: list[str] = []

    def title(self, text: str) -> None:
        """Write the heading of the whole run."""
        self._write(text)
        self._write("=" * len(text))

    def section(self, text: str) -> None:
        """Start the next numbered section."""
        self._sections += 1
        self._write("")
        self._write(f"{self._sections}. {text}")

    def line(self, text: str = "", *, depth: int = 1) -> None:
        """Write one indented line."""
        self._write(f"{INDENT * depth}{text}" if text else "")

    def outcome(self, attempt: str, result: str, *, depth: int = 2) -> None:
        """Write ``attempt -> result`` with the arrows aligned, then any log lines it raised."""
        self._emit(f"{INDENT * depth}{attempt:<46} -> {result}")
        self._drain()

    def note(self, text: str) -> None:
        """Queue a log line; it is written after the next outcome, or before any other line."""
        self._notes.append(text)

    def columns(self, left: Sequence[str], right: Sequence[str]) -> None:
        """Write two blocks of lines side by side."""
        for index in range(max(len(left), len(right))):
            first = left[index] if index < len(left) else ""
            second = right[index] if index < len(right) else ""
            self.line(f"{first:<{COLUMN_WIDTH}}{second}".rstrip())

    def event(self, received: ReceivedEvent, org_names: Mapping[uuid.UUID, str]) -> None:
        """Write one event read from the broker: topic, key, type, organization, detail."""
        event_type = type(received.event).event_type()
        key = short(received.key.decode()) if received.key else "-"
        org = org_names.get(received.org_id, short(received.org_id))
        self.line(
            f"{received.topic:<28} key {key}  {event_type:<26} {org:<14} "
            f"{describe(received.event.model_dump())}".rstrip()
        )

    def flush(self) -> None:
        """Write the log lines still queued (at the end of a run, failed or not)."""
        self._drain()

    def _write(self, text: str) -> None:
        self._drain()
        self._emit(text)

    def _drain(self) -> None:
        notes, self._notes = self._notes, []
        for note in notes:
            self._emit(f"{INDENT * 3}{note}")

    def _emit(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def describe(fields: Mapping[str, Any]) -> str:
    """Return the one or two payload fields that say what an event was about."""
    if "new_status" in fields:
        return f"{fields['old_status']} -> {fields['new_status']}"
    if "unit_amount" in fields:
        return money(fields["unit_amount"], fields["currency"])
    if "amount" in fields:
        return money(fields["amount"], fields["currency"])
    if "role" in fields and "user_id" in fields:
        return f"user {short(fields['user_id'])} as {fields['role']}"
    data = fields.get("data")
    if isinstance(data, Mapping):
        if "capabilities" in data:
            return f"{data['name']} {list(data['capabilities'])}"
        if "email" in data:
            return f"{data['name']} <{data['email']}>"
    if "name" in fields:
        return str(fields["name"])
    return ""


class ConsoleLog(logging.Handler):
    """Shows the library's warnings in the demo's output, indented under the current step.

    The library logs every database refusal once at WARNING; the demo makes that
    visible instead of leaving the records to Python's last-resort stderr handler.
    """

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record as ``log: LEVEL logger [org ...]: message`` (cut to one line)."""
        org = getattr(record, "org_id", "-")
        tenant = f" [org {short(org)}]" if org != "-" else ""
        text = f"log: {record.levelname} {record.name}{tenant}: {record.getMessage()}"
        if len(text) > NOTE_WIDTH:
            # One line per record: the outcome line above already names the error.
            text = text[: NOTE_WIDTH - 4].rsplit(" ", 1)[0] + " ..."
        self.console.note(text)
