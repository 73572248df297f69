"""Campaign launch through the gateway attaches the current rule set's campaign channels by origin sales channel
(a real gRPC server with a fake CampaignService that keeps them, as the service does), and shows them back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.campaign.v1 import campaign_pb2_grpc
from marksman.common.v1 import common_pb2

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import serving

RULES: dict[str, Any] = {"currency": "GBP", "rules": [], "channel_rules": {"channels": {
    "marketplace": {"campaign_channels": ["email", "push"]},
    "partner": {"campaign_channels": []},
    "app": {"recommendations": {"only_in_stock": True}}}}}


class FakeCampaign(campaign_pb2_grpc.CampaignServiceServicer):
    """Launches by keeping the channel rules with the campaign, as the campaign service does."""

    def __init__(self) -> None:
        self.launches: list[Any] = []

    def LaunchCampaign(self, request: Any, context: Any) -> Any:
        self.launches.append(request)
        campaign = pb.Campaign(id=request.id, state=pb.CAMPAIGN_STATE_RUNNING, audience_version=3,
                               spec=pb.CampaignSpec(name="winter", goal=pb.GOAL_RETENTION, segment="vips",
                                                    template="Hi", channels=[pb.ChannelRoute(
                                                        channel=pb.CHANNEL_EMAIL, partner="mailer")]),
                               spent=common_pb2.Money(currency="GBP"), channel_rules=request.channel_rules)
        campaign.created_at.GetCurrentTime()
        return pb.LaunchCampaignResponse(campaign=campaign)


@pytest.fixture
def fake() -> Iterator[tuple[FakeCampaign, str]]:
    servicer = FakeCampaign()
    with serving(campaign_pb2_grpc.add_CampaignServiceServicer_to_server, servicer) as address:
        yield servicer, address


@pytest.fixture
def api(settings: GatewaySettings, keys: KeyStore, fake: tuple[FakeCampaign, str]) -> Iterator[TestClient]:
    wired = settings.model_copy(update={"campaign_addr": fake[1]})
    with TestClient(create_app(wired, keys=keys)) as test_client:
        yield test_client


def test_launch_attaches_the_current_rule_sets_campaign_channels(
        api: TestClient, admin: dict[str, str], fake: tuple[FakeCampaign, str]) -> None:
    launches = fake[0].launches
    before = api.post("/v1/campaigns/7/launch", headers=admin)
    assert before.status_code == 200, before.text
    assert launches[-1].channel_rules == pb.ChannelRules()
    assert before.json()["channel_rules"] == {"rule_set_version": None, "origins": {}}

    assert api.put("/v1/pricing/rule-set", json=RULES, headers=admin).status_code == 201
    launched = api.post("/v1/campaigns/8/launch", headers=admin)
    assert launched.status_code == 200, launched.text
    sent = launches[-1].channel_rules
    assert sent.rule_set_version == 1
    assert {o.sales_channel: list(o.channels) for o in sent.origins} == {
        common_pb2.SALES_CHANNEL_MARKETPLACE: [pb.CHANNEL_EMAIL, pb.CHANNEL_PUSH],
        common_pb2.SALES_CHANNEL_PARTNER: []}
    assert launched.json()["channel_rules"] == {"rule_set_version": 1,
                                                "origins": {"marketplace": ["email", "push"], "partner": []}}
