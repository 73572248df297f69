"""Amounts in a currency's major units (as marketers write them) to exact integer minor units."""

from __future__ import annotations

from decimal import Decimal

# ISO 4217 minor-unit exponents that are not 2; every other code (and "") has two decimals.
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                     "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
DEFAULT_EXPONENT = 2


def exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit (GBP 2, JPY 0, KWD 3)."""
    return _EXPONENTS.get(currency.upper(), DEFAULT_EXPONENT)


def to_minor(amount: Decimal, currency: str) -> Decimal:
    """The amount in minor units, exactly (may have a fraction: 10.005 GBP is 1000.5 pence)."""
    return amount.scaleb(exponent(currency))
