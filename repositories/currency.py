"""Currency codes: the active ISO 4217 alphabetic codes, and the parsing of caller input."""

from __future__ import annotations

from repositories.validation import shown
from tenancy.errors import InvalidData

#: The alphabetic codes of ISO 4217 List One (current currencies and funds), as
#: maintained by SIX for ISO. Update it when ISO publishes an amendment; a code
#: removed here is refused for new rows, and lookups in it fail loudly.
ACTIVE_CURRENCY_CODES: frozenset[str] = frozenset(
    {
        "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN",
        "BAM", "BBD", "BDT", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL",
        "BSD", "BTN", "BWP", "BYN", "BZD",
        "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU",
        "CRC", "CUP", "CVE", "CZK",
        "DJF", "DKK", "DOP", "DZD",
        "EGP", "ERN", "ETB", "EUR",
        "FJD", "FKP",
        "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD",
        "HKD", "HNL", "HTG", "HUF",
        "IDR", "ILS", "INR", "IQD", "IRR", "ISK",
        "JMD", "JOD", "JPY",
        "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
        "LAK", "LBP", "LKR", "LRD", "LSL", "LYD",
        "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
        "MWK", "MXN", "MXV", "MYR", "MZN",
        "NAD", "NGN", "NIO", "NOK", "NPR", "NZD",
        "OMR",
        "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
        "QAR",
        "RON", "RSD", "RUB", "RWF",
        "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD",
        "SSP", "STN", "SVC", "SYP", "SZL",
        "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS",
        "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS",
        "VED", "VES", "VND", "VUV",
        "WST",
        "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR",
        "XOF", "XPD", "XPF", "XPT", "XSU", "XTS", "XUA", "XXX",
        "YER",
        "ZAR", "ZMW", "ZWG",
        # Still listed while their replacements take over (XCG, and the euro in Bulgaria).
        "ANG", "BGN",
    }
)  # fmt: skip


def normalize_currency(currency: object) -> str:
    """Return ``currency`` as an active ISO 4217 code (upper-case ASCII).

    Surrounding blanks are ignored and ASCII lower case is upper-cased. Any
    non-ASCII letter is refused *before* upper-casing: ``str.upper`` turns
    ``'ßd'`` into ``'SSD'`` and full-width letters into full-width capitals.

    Raises:
        InvalidData: not a string of three ASCII letters, or not an active ISO 4217 code.
    """
    if not isinstance(currency, str):
        raise InvalidData(f"currency must be a str, not {type(currency).__name__}")
    code = currency.strip()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise InvalidData(f"currency must be three ASCII letters (ISO 4217), not {shown(currency)}")
    code = code.upper()
    if code not in ACTIVE_CURRENCY_CODES:
        raise InvalidData(f"currency {code!r} is not an active ISO 4217 code")
    return code
