"""Email addresses: the one stored spelling of an address, and the checks it must pass.

An address is stored stripped, NFC-normalised and lower-cased, so the NFC and
NFD spellings of one address (``é`` as one code point or as ``e`` and a
combining accent) are one customer, and the unique index sees them as equal.
Lookups use the same spelling without the checks: a malformed address simply
matches nothing, and rows stored before the checks existed can still be found.
"""

from __future__ import annotations

import re
import unicodedata

from tenancy.errors import InvalidData

#: RFC 5321 limits, in octets of the UTF-8 encoding (RFC 6531 addresses).
MAX_ADDRESS_OCTETS = 254
MAX_LOCAL_OCTETS = 64

#: An ASCII host name label (RFC 1123), after lower-casing: letters, digits and
#: inner hyphens, 1 to 63 characters.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def email_key(email: object) -> str:
    """Return ``email`` in its stored spelling (stripped, NFC, lower-cased), unchecked.

    Raises:
        InvalidData: ``email`` is not a string.
    """
    if not isinstance(email, str):
        raise InvalidData(f"email must be a str, not {type(email).__name__}")
    # NFC first, so that everything after depends only on the NFC form: the NFC
    # and NFD spellings of one address cannot come out different. NFC again after
    # lower(): lower-casing can decompose (İ becomes i and U+0307).
    nfc = unicodedata.normalize("NFC", email).strip()
    return unicodedata.normalize("NFC", nfc.lower())


def normalize_email(email: object) -> str:
    """Return ``email`` in its stored spelling after checking that it is an address.

    The checks, on the stored spelling: exactly one ``@``; a non-empty local part
    of at most 64 octets; no whitespace, control, format or unassigned characters
    (categories Z* and C*); a domain of at least two dot-separated labels, each an
    ASCII host name label or a Unicode label that IDNA encodes and decodes back
    to itself, the last not all digits; at most 254 octets in all. Messages never
    repeat the address: it is personal data, and refusals are logged.

    Raises:
        InvalidData: ``email`` is not a string, is blank, or is not an address.
    """
    key = email_key(email)
    if not key:
        raise InvalidData("email must not be blank")
    if _has_space_or_control(key):
        raise InvalidData("email must not contain whitespace or control characters")
    if key.count("@") != 1:
        raise InvalidData("email must contain exactly one '@'")
    local, domain = key.split("@")
    if not local:
        raise InvalidData("email needs a local part before the '@'")
    if len(local.encode()) > MAX_LOCAL_OCTETS:
        raise InvalidData(f"the local part of an email has at most {MAX_LOCAL_OCTETS} octets")
    if len(key.encode()) > MAX_ADDRESS_OCTETS:
        raise InvalidData(f"an email has at most {MAX_ADDRESS_OCTETS} octets")
    _check_domain(domain)
    return key


def _has_space_or_control(key: str) -> bool:
    if key.isascii():
        # In ASCII, categories Z* and C* are the space and the control characters,
        # which are exactly what isprintable() refuses besides the space.
        return " " in key or not key.isprintable()
    return any(unicodedata.category(c)[0] in "CZ" for c in key)


def _check_domain(domain: str) -> None:
    labels = domain.split(".")
    if len(labels) < 2:
        raise InvalidData("the domain of an email needs at least one dot")
    if not all(_valid_label(label) for label in labels):
        raise InvalidData("the domain of an email has an invalid label")
    if labels[-1].isdigit():
        # An address literal would be written [192.0.2.1]; a bare number is a typo.
        raise InvalidData("the domain of an email must end in a name, not a number")


def _valid_label(label: str) -> bool:
    if label.isascii():
        return _LABEL.fullmatch(label) is not None
    # The standard library's IDNA 2003 codec (no extra dependency). The label must
    # come back unchanged: nameprep maps full-width letters and 'ß' to other
    # spellings, and one domain must have one stored spelling.
    try:
        encoded = label.encode("idna")
        return encoded.decode("idna") == label and _LABEL.fullmatch(encoded.decode()) is not None
    except UnicodeError:
        return False
