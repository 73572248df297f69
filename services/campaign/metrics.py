"""The campaign service's Prometheus metrics; labels are partner names (operator-chosen, bounded) and fixed words."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "marksman_campaign_deliveries_total",
    "Delivery outcomes by partner and state (sent, failed, dead, retried, queued, skipped, deferred).",
    ["partner", "state"],
)
SKIPPED = Counter("marksman_campaign_skipped_total", "Deliveries not sent by decision, by reason.", ["reason"])
PARTNER_ERRORS = Counter(
    "marksman_campaign_partner_errors_total",
    "Push requests to a partner that failed as a whole, by kind (timeout, connection, http_5xx, http_4xx, bad_reply).",
    ["partner", "kind"],
)
PARTNER_REQUESTS = Counter("marksman_campaign_partner_requests_total", "Push requests sent, by partner.", ["partner"])
DEAD_LETTERS = Counter("marksman_campaign_dead_letters_total", "Messages given up after the last attempt.", ["partner"])
DISPATCH_LAG = Gauge(
    "marksman_campaign_dispatch_lag_seconds",
    "Age of the oldest delivery that is due and not yet taken by a worker (0 when none waits).",
)
PUSH_SECONDS = Histogram(
    "marksman_campaign_push_seconds",
    "Time of one push request to a partner.",
    ["partner"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
LAUNCHED = Counter("marksman_campaign_launch_deliveries_total", "Deliveries written by launches (holdout included).")
RESPONSES = Counter(
    "marksman_campaign_responses_total",
    "Responses counted once per message: delivered, opened, clicked, unsubscribed (partners' receipts) and "
    "converted (an order attributed to the campaign, when a report first attributes it).",
    ["kind"],
)
ATTRIBUTED_REVENUE = Counter(
    "marksman_campaign_attributed_revenue_minor_total",
    "Revenue of targeted customers' orders attributed to campaigns (minor units), when first attributed.",
    ["currency"],
)
