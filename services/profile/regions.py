"""A customer's default IANA time zone from their region (country name or ISO 3166 code), via tzdata's tables."""

from __future__ import annotations

from functools import cache
from importlib import resources

# Names platforms use that tzdata's iso3166.tab does not (the retail data says "EIRE", "RSA").
ALIASES = {
    "usa": "US", "united states": "US", "united states of america": "US", "uk": "GB", "united kingdom": "GB",
    "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "eire": "IE", "ireland": "IE", "rsa": "ZA", "south africa": "ZA", "channel islands": "JE",
    "european community": "BE", "european union": "BE", "czech republic": "CZ", "czechia": "CZ",
    "russia": "RU", "south korea": "KR", "korea": "KR", "uae": "AE", "hong kong": "HK", "taiwan": "TW",
    "china": "CN", "vietnam": "VN", "unspecified": "",
}
# Countries spanning several zones: the zone most of their people live in.
PRINCIPAL = {
    "US": "America/New_York", "CA": "America/Toronto", "AU": "Australia/Sydney", "BR": "America/Sao_Paulo",
    "RU": "Europe/Moscow", "CN": "Asia/Shanghai", "MX": "America/Mexico_City", "ID": "Asia/Jakarta",
    "KZ": "Asia/Almaty", "AR": "America/Argentina/Buenos_Aires", "ES": "Europe/Madrid", "PT": "Europe/Lisbon",
    "DE": "Europe/Berlin", "CY": "Asia/Nicosia", "MY": "Asia/Kuala_Lumpur", "UA": "Europe/Kyiv",
    "CL": "America/Santiago", "EC": "America/Guayaquil", "NZ": "Pacific/Auckland", "FR": "Europe/Paris",
    "GB": "Europe/London", "MN": "Asia/Ulaanbaatar", "UZ": "Asia/Tashkent", "CD": "Africa/Kinshasa",
    "PS": "Asia/Gaza", "GL": "America/Nuuk", "KI": "Pacific/Tarawa", "FM": "Pacific/Pohnpei",
    "PF": "Pacific/Tahiti", "MH": "Pacific/Majuro", "UM": "Pacific/Midway", "AQ": "",
}


def _table(name: str) -> list[list[str]]:
    text = (resources.files("tzdata") / "zoneinfo" / name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@cache
def _codes_by_name() -> dict[str, str]:
    return {row[1].strip().lower(): row[0] for row in _table("iso3166.tab")}


@cache
def _zones_by_code() -> dict[str, list[str]]:
    zones: dict[str, list[str]] = {}
    for row in _table("zone.tab"):
        zones.setdefault(row[0], []).append(row[2])
    return zones


def country_code(region: str) -> str:
    """ISO 3166 alpha-2 code for a region name or code; "" when unknown."""
    text = region.strip()
    if len(text) == 2 and text.upper() in _zones_by_code():
        return text.upper()
    key = text.lower()
    if key in ALIASES:
        return ALIASES[key]
    return _codes_by_name().get(key, "")


def default_time_zone(region: str) -> str:
    """The region's zone: its only one, or the principal one of a multi-zone country; "" when unknown."""
    code = country_code(region)
    if not code:
        return ""
    if code in PRINCIPAL:
        return PRINCIPAL[code]
    zones = _zones_by_code().get(code, [])
    return zones[0] if len(zones) == 1 else ""
