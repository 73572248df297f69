"""The typed catalogue of portrait traits a rule may name, and the frame column behind each."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

RFM_SEGMENTS: tuple[str, ...] = (
    "champions", "loyal", "potential_loyalists", "new_customers", "promising", "need_attention",
    "about_to_sleep", "at_risk", "cant_lose_them", "hibernating", "lost",
)
LIFECYCLE_STAGES: tuple[str, ...] = ("new", "active", "at_risk", "dormant", "churned")
PAYMENT_CHANNELS: tuple[str, ...] = ("wechat_pay", "alipay", "bank_card", "cash_on_delivery", "other")
SALES_CHANNELS: tuple[str, ...] = ("web", "app", "mini_program", "marketplace", "partner")
CONSENT_CHANNELS: tuple[str, ...] = ("email", "sms", "push")


class Kind(StrEnum):
    NUMBER = "number"
    # Compared in the customer's currency units (1000 = £1,000.00); stored in minor units.
    MONEY = "money"
    TEXT = "text"
    FLAG = "yes/no"
    TEXT_LIST = "list of texts"


@dataclass(frozen=True, slots=True)
class Trait:
    name: str
    kind: Kind
    description: str
    # The frame column (MONEY: the integer minor-unit column).
    column: str = ""
    # A closed set of values for TEXT traits; a literal outside it is refused at creation.
    choices: tuple[str, ...] = ()
    # The trait is undefined below this frequency (recency of a customer without orders):
    # every comparison on it is false there.
    min_frequency: int = 0

    @property
    def source(self) -> str:
        return self.column or self.name


TRAITS: dict[str, Trait] = {t.name: t for t in (
    Trait("has_orders", Kind.FLAG, "the customer has ordered at least once"),
    Trait("recency_days", Kind.NUMBER, "days since the last order (undefined without orders)", min_frequency=1),
    Trait("frequency", Kind.NUMBER, "orders placed (a fully refunded order still counts)"),
    Trait("monetary", Kind.MONEY, "net spend after refunds, in currency units", column="monetary_minor"),
    Trait("average_order_value", Kind.MONEY, "net spend per order, in currency units (undefined without orders)",
       column="average_order_value_minor", min_frequency=1),
    Trait("currency", Kind.TEXT, "ISO 4217 code of the customer's spend, e.g. \"GBP\""),
    Trait("r_score", Kind.NUMBER, "recency score 1-5, 5 = most recent (undefined without orders)", min_frequency=1),
    Trait("f_score", Kind.NUMBER, "frequency score 1-5 (undefined without orders)", min_frequency=1),
    Trait("m_score", Kind.NUMBER, "monetary score 1-5 (undefined without orders)", min_frequency=1),
    Trait("rfm_segment", Kind.TEXT, "named RFM segment", choices=RFM_SEGMENTS),
    Trait("lifecycle", Kind.TEXT, "lifecycle stage", choices=LIFECYCLE_STAGES),
    Trait("purchasing_power", Kind.NUMBER, "where the customer's prices sit in their categories, 0-1"),
    Trait("price_sensitivity", Kind.NUMBER, "share of spend bought below list price, 0-1"),
    Trait("brand_loyalty", Kind.NUMBER, "concentration of spend on few brands, 0-1"),
    Trait("category_loyalty", Kind.NUMBER, "concentration of spend on few categories, 0-1"),
    Trait("top_categories", Kind.TEXT_LIST, "the customer's top category interests"),
    Trait("preferred_payment", Kind.TEXT, "most used payment channel", choices=PAYMENT_CHANNELS),
    Trait("preferred_sales_channel", Kind.TEXT, "most used sales channel", choices=SALES_CHANNELS),
    Trait("region", Kind.TEXT, "country or region as the platform knows it"),
    Trait("views", Kind.NUMBER, "product views"),
    Trait("carts", Kind.NUMBER, "add-to-cart events"),
    Trait("searches", Kind.NUMBER, "searches"),
    Trait("refunds", Kind.NUMBER, "refunds"),
    Trait("purchase_interval_days", Kind.NUMBER, "mean days between orders (undefined below two orders)",
       min_frequency=2),
    *(Trait(f"consent_{c}", Kind.FLAG, f"the customer allows {c} messages") for c in CONSENT_CHANNELS),
)}

# Columns of the portrait frame besides the traits: the service's key and the platform's id.
KEY_COLUMN = "key"
ID_COLUMN = "customer_id"
# top_categories is held as one text column per rank (top_category_1 ...), in the store and the
# frame, so `"Home" in top_categories` is a few vectorised comparisons instead of a per-row loop.
# Profile ranks at most 3; categories past the fifth are not kept.
TOP_CATEGORY_SLOTS = 5
CATEGORY_SLOTS: tuple[str, ...] = tuple(f"top_category_{rank}" for rank in range(1, TOP_CATEGORY_SLOTS + 1))
