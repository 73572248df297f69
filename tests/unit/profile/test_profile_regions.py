"""Default time zones from a region name or ISO code, from tzdata's own tables."""

from __future__ import annotations

import pytest

from services.profile.regions import country_code, default_time_zone


@pytest.mark.parametrize(("region", "zone"), [
    ("United Kingdom", "Europe/London"), ("GB", "Europe/London"), ("gb", "Europe/London"),
    ("Japan", "Asia/Tokyo"), ("EIRE", "Europe/Dublin"), ("RSA", "Africa/Johannesburg"),
    ("USA", "America/New_York"), ("Australia", "Australia/Sydney"), ("China", "Asia/Shanghai"),
    ("Channel Islands", "Europe/Jersey"), ("Iceland", "Atlantic/Reykjavik"),
    ("Unspecified", ""), ("Atlantis", ""), ("", ""),
])
def test_default_zone(region: str, zone: str) -> None:
    assert default_time_zone(region) == zone


def test_names_and_codes_meet() -> None:
    assert country_code(" germany ") == "DE" == country_code("DE")
    assert country_code("Narnia") == ""
