"""Which upstream calls are idempotent reads, and the gRPC retry policy (service config) that retries only them."""

from __future__ import annotations

import json

from marksman.campaign.v1 import campaign_pb2
from marksman.profile.v1 import profile_pb2
from marksman.recommend.v1 import recommend_pb2
from marksman.segment.v1 import segment_pb2

# Reads only: asking twice changes nothing the caller could see. Everything else (ingest, upsert, train,
# launch, erase, refresh, sync...) is never retried: a lost answer may hide a write that happened.
READS: dict[str, tuple[str, ...]] = {
    "profile": ("GetCustomer", "GetCustomers", "GetPortrait", "GetCustomerTotals", "SummarizeBase",
                "ExportPortraits", "ExportInteractions"),
    "segment": ("ValidateRule", "PreviewRule", "GetSegment", "ListSegments", "StreamMembers",
                "ListCustomerSegments", "ListModels", "GetModel"),
    "recommend": ("GetItem", "ListModels", "GetModel", "Recommend", "SimilarItems"),
    "campaign": ("GetCampaign", "ListCampaigns", "ListPartners", "ListDeliveries", "GetCampaignReport"),
}
_DESCRIPTORS = {
    "profile": profile_pb2.DESCRIPTOR.services_by_name["ProfileService"],
    "segment": segment_pb2.DESCRIPTOR.services_by_name["SegmentService"],
    "recommend": recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"],
    "campaign": campaign_pb2.DESCRIPTOR.services_by_name["CampaignService"],
}


def full_service_name(upstream: str) -> str:
    return str(_DESCRIPTORS[upstream].full_name)


def service_config(upstream: str, retries: int, backoff_s: float) -> str:
    """The channel's service config: reads retried up to `retries` times on UNAVAILABLE, writes never.

    gRPC retries inside the call's own deadline, with jittered exponential backoff, only while no answer
    has started, and stops retrying when most recent attempts fail (retryThrottling), so a dead upstream
    is not hit three times as hard. A DEADLINE_EXCEEDED is retried only when the server sent it (time
    remains); the call's own deadline ends the call and every retry with it."""
    service = full_service_name(upstream)
    methods = [{"service": service, "method": method} for method in READS[upstream]]
    config: dict[str, object] = {
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }
    if retries > 0:
        config["methodConfig"] = [{
            "name": methods,
            "retryPolicy": {
                "maxAttempts": retries + 1,
                "initialBackoff": f"{backoff_s:g}s",
                "maxBackoff": f"{backoff_s * 8:g}s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "DEADLINE_EXCEEDED"],
            },
        }]
    return json.dumps(config)
