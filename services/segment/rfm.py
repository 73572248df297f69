"""The built-in RFM segments: one rule segment per named segment of profile's `rfm_segment` trait."""

from __future__ import annotations

from services.segment.store import KIND_RULE, NewSegment
from services.segment.traits import RFM_SEGMENTS

PREFIX = "rfm_"

# R is the recency score, FM = (F + M) / 2 rounded half up; the grid is profile's
# (services/profile/traits.py, rfm_segment), and RULES.md repeats it.
DESCRIPTIONS: dict[str, str] = {
    "champions": "bought very recently, often, and spent the most (R 5, FM 4-5)",
    "loyal": "buy regularly and spend well (R 3-4, FM 4-5)",
    "potential_loyalists": "recent customers with average frequency and spend (R 4-5, FM 2-3)",
    "new_customers": "bought very recently, but little so far (R 5, FM 1)",
    "promising": "recent shoppers who have not spent much yet (R 4, FM 1)",
    "need_attention": "average recency, frequency and spend (R 3, FM 3)",
    "about_to_sleep": "below-average recency and spend (R 3, FM 1-2)",
    "at_risk": "spent well and often, but long ago (R 1-2, FM 3-4)",
    "cant_lose_them": "were among the best, but have not come back (R 1-2, FM 5)",
    "hibernating": "last bought long ago, rarely and for little (R 1-2, FM 1-2, except R 1 FM 1)",
    "lost": "lowest recency, frequency and spend (R 1, FM 1)",
}


def built_in_segments() -> list[NewSegment]:
    """rfm_champions, rfm_loyal, ...: `rfm_segment == "<name>"` each, in profile's order."""
    return [
        NewSegment(name=PREFIX + name, kind=KIND_RULE, rule=f'rfm_segment == "{name}"',
                   description=f"RFM: {DESCRIPTIONS[name]}", built_in=True)
        for name in RFM_SEGMENTS
    ]
