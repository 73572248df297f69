"""EstimateAudiences and CompareCampaigns over a real in-process gRPC server, with segment and profile fakes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.common.v1 import common_pb2

from services.campaign.store import Outcome, Reserved
from tests.support.rpc import rpc_error
from tests.unit.campaign.campaign_fakes import RunningCampaign, customer, running_campaign

NOW = datetime(2011, 11, 1, tzinfo=UTC)
GBP = "GBP"


Running = RunningCampaign


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    with running_campaign(tmp_path / "campaign.db", NOW) as started:
        yield started


def request(**fields: object) -> pb.EstimateAudiencesRequest:
    values: dict[str, object] = {
        "audiences": [pb.AudienceToEstimate(name="rule", segment="recent", cost_per_contact_minor=500),
                      pb.AudienceToEstimate(name="model", segment="likely", cost_per_contact_minor=1250)],
        "budget": common_pb2.Money(amount_minor=5_000, currency=GBP),
        "history": pb.ResponseHistory(response_rate=0.02, revenue_per_responder_minor=21_000, mean_score=0.1),
        "scores_segment": "scored",
    }
    return pb.EstimateAudiencesRequest(**(values | fields))  # type: ignore[arg-type]


def test_rule_and_model_audiences_on_one_budget(running: Running) -> None:
    seg = running.segment
    # The rule segment's own order puts low scorers first; the model audience carries its own scores.
    seg.members["recent"] = [f"r{i}" for i in range(20)] + ["x0"]
    seg.members["scored"] = [f"r{i}" for i in range(5)] + ["x0", "x1", "x2", "x3"]
    seg.scores["scored"] = [0.05] * 5 + [0.5, 0.4, 0.3, 0.2]
    seg.members["likely"] = ["x3", "x0", "x1", "x2"]
    seg.scores["likely"] = [0.2, 0.5, 0.4, 0.3]
    got = running.stub.EstimateAudiences(request())
    rule, model = got.estimates
    # Rule: 5,000 / 500 = its first 10 members in its own order; 5 scored 0.05 -> 0.01 each, 5 unscored at 0.02.
    assert (rule.name, rule.segment, rule.version, rule.members, rule.contacts, rule.scored) == (
        "rule", "recent", 7, 21, 10, 5)
    assert rule.expected_responses == pytest.approx(5 * 0.01 + 5 * 0.02)
    assert rule.cost.amount_minor == 5_000 and rule.revenue.amount_minor == round(0.15 * 21_000)
    assert rule.revenue_over_cost == pytest.approx(3150 / 5000) and rule.net_roi == pytest.approx(-1850 / 5000)
    # Model: 5,000 / 1,250 = 4 contacts, highest first, its own scores calibrated by 0.02 / 0.1.
    assert (model.contacts, model.scored, model.members) == (4, 4, 4)
    assert model.expected_responses == pytest.approx((0.5 + 0.4 + 0.3 + 0.2) * 0.2)
    assert model.revenue.amount_minor == round(0.28 * 21_000) and model.cost.amount_minor == 5_000
    assert model.responses_low < model.expected_responses < model.responses_high
    assert "expected responses" in got.table and "rule" in got.table and "model" in got.table
    assert "117.60%" in got.table  # the model's 5,880 / 5,000


def test_without_scores_segment_rule_members_count_at_the_past_rate(running: Running) -> None:
    running.segment.members["recent"] = [f"r{i}" for i in range(3)]
    running.segment.members["likely"] = ["x0"]
    running.segment.scores["likely"] = [0.1]
    got = running.stub.EstimateAudiences(request(scores_segment=""))
    assert got.estimates[0].scored == 0 and got.estimates[0].expected_responses == pytest.approx(3 * 0.02)
    # A budget no contact fits: nothing spent, no ROI.
    tiny = running.stub.EstimateAudiences(request(scores_segment="", budget=common_pb2.Money(amount_minor=1,
                                                                                              currency=GBP)))
    assert tiny.estimates[0].contacts == 0 and not tiny.estimates[0].HasField("revenue_over_cost")


@pytest.mark.parametrize(("change", "message"), [
    ({"audiences": []}, "give 1 to 10 audiences; got 0"),
    ({"budget": common_pb2.Money(amount_minor=0, currency=GBP)}, "budget.amount_minor must be 1 to"),
    ({"budget": common_pb2.Money(amount_minor=10, currency="gbp")}, "budget.currency must be an ISO 4217 code"),
    ({"audiences": [pb.AudienceToEstimate(name="a", segment="recent", cost_per_contact_minor=0)]},
     "audiences[0].cost_per_contact_minor must be 1 to"),
    ({"audiences": [pb.AudienceToEstimate(name="a", segment="recent", cost_per_contact_minor=1)] * 2},
     "audiences[1].name must be given and unique"),
    ({"history": pb.ResponseHistory(response_rate=1.5, revenue_per_responder_minor=1)},
     "history: the past response rate must be between 0 and 1"),
    ({"history": pb.ResponseHistory(response_rate=0.1, revenue_per_responder_minor=1, mean_score=2)},
     "history: the past mean score must be in (0, 1]"),
    ({"scores_segment": "recent"}, "scores_segment 'recent' is a rule segment"),
])
def test_bad_requests_say_what_is_wrong(running: Running, change: dict[str, object], message: str) -> None:
    running.segment.members["recent"] = ["r0"]
    error = rpc_error(lambda: running.stub.EstimateAudiences(request(**change)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and message in (error.details() or "")


def test_unknown_segment_is_not_found(running: Running) -> None:
    running.segment.members["scored"] = ["r0"]
    running.segment.scores["scored"] = [0.5]
    error = rpc_error(lambda: running.stub.EstimateAudiences(request()))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "recent" in (error.details() or "")


def _sent_campaign(running: Running, name: str, segment: str, cost: int) -> int:
    spec = pb.CampaignSpec(name=name, goal=pb.GOAL_GROWTH, segment=segment, template="Hi {name}", currency=GBP,
                           channels=[pb.ChannelRoute(channel=pb.CHANNEL_EMAIL, partner="mailer",
                                                     cost_per_contact_minor=cost)])
    created = running.stub.CreateCampaign(pb.CreateCampaignRequest(spec=spec)).campaign
    running.stub.LaunchCampaign(pb.LaunchCampaignRequest(id=created.id))
    mailer = running.store.partner("mailer")
    rows = running.store.claim("w", datetime.now(UTC) + timedelta(seconds=1),
                               datetime.now(UTC) + timedelta(minutes=1), 100)
    running.store.settle("w", skipped={}, deferred={}, reserved=[Reserved(r.id, "email", mailer.id, cost) for r in rows],
                         budgets={created.id: -1})
    running.store.record("w", [Outcome(r.id, "sent") for r in rows], NOW)
    return created.id


def test_compare_two_campaigns(running: Running) -> None:
    running.stub.RegisterPartner(pb.RegisterPartnerRequest(partner=pb.Partner(
        name="mailer", endpoint="http://127.0.0.1:9/messages", mode=pb.PARTNER_MODE_PUSH, channel=pb.CHANNEL_EMAIL)))
    running.segment.members["all"] = [f"a{i}" for i in range(10)]
    running.segment.members["top"] = ["t0", "t1"]
    for cid in [*running.segment.members["all"], *running.segment.members["top"]]:
        running.profile.customers[cid] = customer(cid)
    blanket = _sent_campaign(running, "blanket", "all", 500)
    precision = _sent_campaign(running, "precision", "top", 1250)
    running.profile.order("o1", "a3", NOW + timedelta(days=2), 21_000)
    running.profile.order("o2", "t1", NOW + timedelta(days=1), 21_000)
    running.profile.order("o3", "t0", NOW + timedelta(days=9), 21_000)  # after the 7-day window
    got = running.stub.CompareCampaigns(pb.CompareCampaignsRequest(first_id=blanket, second_id=precision))
    assert running.profile.exports == 1  # both campaigns' orders from one read
    assert (got.first.name, got.first.targeted, got.first.responses, got.first.cost.amount_minor) == (
        "blanket", 10, 1, 5_000)
    assert (got.second.name, got.second.targeted, got.second.responses, got.second.revenue.amount_minor) == (
        "precision", 2, 1, 21_000)
    lines = {line.split("  ")[0]: line.split() for line in got.table.splitlines()}
    assert lines["cost per contact"][-2:] == ["5.00", "12.50"]
    assert lines["response rate"][-2:] == ["10.00%", "50.00%"]
    assert lines["ROI: revenue / cost"][-2:] == ["420.00%", "840.00%"]
    missing = rpc_error(lambda: running.stub.CompareCampaigns(pb.CompareCampaignsRequest(first_id=blanket,
                                                                                         second_id=99)))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(lambda: running.stub.CompareCampaigns(pb.CompareCampaignsRequest(first_id=blanket))).code() \
        == grpc.StatusCode.INVALID_ARGUMENT
