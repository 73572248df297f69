"""Pure campaign logic: the state machine, holdout, channel choice, quiet hours across zones, caps, backoff,
templates and spec checks."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from services.campaign import backoff, holdout, policy
from services.campaign import spec as specs
from services.campaign.policy import Contact
from services.campaign.spec import Cap, QuietHours, Route
from services.campaign.states import Action, State, after, check
from services.campaign.template import TemplateError, parse
from services.common.errors import FailedPrecondition, InvalidArgument
from tests.unit.campaign.campaign_data import spec

# ---- states ----


@pytest.mark.parametrize(("action", "start", "ahead", "end"), [
    (Action.LAUNCH, State.DRAFT, False, State.RUNNING),
    (Action.LAUNCH, State.DRAFT, True, State.SCHEDULED),
    (Action.START, State.SCHEDULED, False, State.RUNNING),
    (Action.PAUSE, State.RUNNING, False, State.PAUSED),
    (Action.PAUSE, State.SCHEDULED, False, State.PAUSED),
    (Action.RESUME, State.PAUSED, False, State.RUNNING),
    (Action.RESUME, State.PAUSED, True, State.SCHEDULED),
    (Action.CANCEL, State.DRAFT, False, State.CANCELLED),
    (Action.CANCEL, State.PAUSED, False, State.CANCELLED),
    (Action.COMPLETE, State.RUNNING, False, State.COMPLETED),
])
def test_valid_transitions(action: Action, start: State, ahead: bool, end: State) -> None:
    assert after(action, start, start_ahead=ahead) is end


@pytest.mark.parametrize(("action", "start"), [
    (Action.LAUNCH, State.RUNNING), (Action.LAUNCH, State.COMPLETED), (Action.PAUSE, State.DRAFT),
    (Action.PAUSE, State.PAUSED), (Action.RESUME, State.RUNNING), (Action.CANCEL, State.COMPLETED),
    (Action.CANCEL, State.CANCELLED), (Action.COMPLETE, State.PAUSED), (Action.START, State.PAUSED),
])
def test_invalid_transitions_name_the_states(action: Action, start: State) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check(action, start)
    assert f"cannot {action.value} a campaign that is {start.value}; it must be" in str(caught.value)


def test_final_states_allow_nothing() -> None:
    for state in (State.COMPLETED, State.CANCELLED):
        for action in Action:
            with pytest.raises(FailedPrecondition):
                check(action, state)


# ---- holdout ----


def test_holdout_is_deterministic_and_per_campaign() -> None:
    customers = [f"c{i}" for i in range(20_000)]
    first = [holdout.in_holdout(1, c, 10) for c in customers]
    assert first == [holdout.in_holdout(1, c, 10) for c in customers]
    share = sum(first) / len(customers)
    assert 0.09 < share < 0.11
    other = [holdout.in_holdout(2, c, 10) for c in customers]
    overlap = sum(a and b for a, b in zip(first, other, strict=True)) / len(customers)
    assert 0.005 < overlap < 0.015  # independent splits: about 10% of 10%
    assert not any(holdout.in_holdout(1, c, 0) for c in customers[:100])
    assert all(holdout.in_holdout(1, c, 100) for c in customers[:100])


def test_holdout_grows_with_the_percentage() -> None:
    # A larger holdout keeps the smaller one's members: the same position decides both.
    customers = [f"c{i}" for i in range(2000)]
    small = {c for c in customers if holdout.in_holdout(5, c, 5)}
    large = {c for c in customers if holdout.in_holdout(5, c, 20)}
    assert small < large


# ---- channel choice ----

ROUTES = (Route("email", "mailer"), Route("sms", "texter"), Route("push", "pusher"))


def contact(**consents: bool) -> Contact:
    return Contact("c1", "Ann", email="a@example.com", phone="+4470", push_token="tok", consents=consents)


def test_first_consented_reachable_channel_wins() -> None:
    assert policy.choose(ROUTES, contact(email=True, sms=True)).route == ROUTES[0]
    choice = policy.choose(ROUTES, contact(email=False, sms=True))
    assert choice.route == ROUTES[1] and choice.address == "+4470"
    no_email = replace(contact(email=True, push=True), email="")
    assert policy.choose(ROUTES, no_email).route == ROUTES[2]


def test_skip_reasons() -> None:
    assert policy.choose(ROUTES, contact(email=False)).reason == policy.SKIP_NO_CONSENT
    assert policy.choose(ROUTES, Contact("c1", consents={"email": True})).reason == policy.SKIP_NO_CONTACT


def test_webhook_and_ads_need_some_marketing_consent() -> None:
    routes = (Route("ads", "adnet"),)
    assert policy.choose(routes, contact(sms=True)).address == "c1"
    assert policy.choose(routes, contact(email=False, sms=False)).reason == policy.SKIP_NO_CONSENT


# ---- quiet hours ----

NIGHT = QuietHours(time(21, 0), time(8, 0))


@pytest.mark.parametrize(("now", "zone", "until"), [
    # 22:30 in London (winter, UTC+0): quiet until 08:00 the next morning.
    (datetime(2024, 1, 15, 22, 30, tzinfo=UTC), "Europe/London", datetime(2024, 1, 16, 8, 0, tzinfo=UTC)),
    # 06:00 London summer time (UTC+1) is 05:00 UTC: quiet until 08:00 BST = 07:00 UTC the same day.
    (datetime(2024, 7, 15, 5, 0, tzinfo=UTC), "Europe/London", datetime(2024, 7, 15, 7, 0, tzinfo=UTC)),
    # 12:00 UTC is 21:00 in Tokyo: quiet until 08:00 Tokyo = 23:00 UTC.
    (datetime(2024, 1, 15, 12, 0, tzinfo=UTC), "Asia/Tokyo", datetime(2024, 1, 15, 23, 0, tzinfo=UTC)),
    # The same instant is 07:00 in New York (EST): quiet for one more hour.
    (datetime(2024, 1, 15, 12, 0, tzinfo=UTC), "America/New_York", datetime(2024, 1, 15, 13, 0, tzinfo=UTC)),
    # An unknown or empty zone is taken as UTC.
    (datetime(2024, 1, 15, 23, 0, tzinfo=UTC), "Mars/Olympus", datetime(2024, 1, 16, 8, 0, tzinfo=UTC)),
    (datetime(2024, 1, 15, 23, 0, tzinfo=UTC), "", datetime(2024, 1, 16, 8, 0, tzinfo=UTC)),
])
def test_quiet_hours_across_zones(now: datetime, zone: str, until: datetime) -> None:
    assert policy.quiet_until(now, zone, NIGHT) == until


def test_outside_quiet_hours_and_edges() -> None:
    assert policy.quiet_until(datetime(2024, 1, 15, 12, 0, tzinfo=UTC), "Europe/London", NIGHT) is None
    assert policy.quiet_until(datetime(2024, 1, 15, 8, 0, tzinfo=UTC), "Europe/London", NIGHT) is None  # end is open
    assert policy.quiet_until(datetime(2024, 1, 15, 21, 0, tzinfo=UTC), "Europe/London", NIGHT) is not None
    assert policy.quiet_until(datetime(2024, 1, 15, 23, 0, tzinfo=UTC), "Europe/London", None) is None
    lunch = QuietHours(time(12, 0), time(14, 0))
    assert policy.quiet_until(datetime(2024, 1, 15, 13, 0, tzinfo=UTC), "UTC", lunch) == datetime(
        2024, 1, 15, 14, 0, tzinfo=UTC)
    assert policy.quiet_until(datetime(2024, 1, 15, 15, 0, tzinfo=UTC), "UTC", lunch) is None


def test_quiet_hours_over_a_dst_change() -> None:
    # The night clocks go forward in London (31 March 2024, 01:00 UTC): 23:30 GMT on the 30th is quiet until
    # 08:00 BST on the 31st, which is 07:00 UTC.
    assert policy.quiet_until(datetime(2024, 3, 30, 23, 30, tzinfo=UTC), "Europe/London", NIGHT) == datetime(
        2024, 3, 31, 7, 0, tzinfo=UTC)


# ---- caps ----


def test_frequency_cap() -> None:
    cap = Cap(2, 7)
    assert not policy.over_cap(0, cap) and not policy.over_cap(1, cap)
    assert policy.over_cap(2, cap) and policy.over_cap(5, cap)
    assert not policy.over_cap(100, None)
    now = datetime(2024, 1, 15, tzinfo=UTC)
    assert policy.cap_window_start(now, cap) == now - timedelta(days=7)


# ---- backoff ----


def test_backoff_grows_is_jittered_and_capped() -> None:
    rng = random.Random(1)
    for attempt in range(1, 8):
        step = min(60.0, 2.0 * 2 ** (attempt - 1))
        delays = [backoff.delay_s(attempt, 2.0, 60.0, rng) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in delays)
        assert max(delays) - min(delays) > step / 4  # jittered, not in step
    assert backoff.delay_s(50, 2.0, 60.0, rng) <= 60.0


# ---- templates ----


def test_template_renders_known_fields() -> None:
    template = parse("Hi {name}! Code {offer_code} ({offer_expires}). {{literal}} {recommended_items}")
    assert template.fields == {"name", "offer_code", "offer_expires", "recommended_items"}
    text = template.render({"name": "Zoë 王", "offer_code": "XMAS", "recommended_items": "A, B"})
    assert text == "Hi Zoë 王! Code XMAS (). {literal} A, B"


@pytest.mark.parametrize(("text", "message"), [
    ("Hi {nmae}", "template field {nmae} is unknown"),
    ("Hi {name.__class__}", "template field {name.__class__} is unknown"),
    ("Hi {name!r}", "takes no format spec or conversion"),
    ("Hi {name:>10}", "takes no format spec or conversion"),
    ("Hi {name", "literal braces"),
    ("Hi }", "literal braces"),
])
def test_template_problems(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        parse(text)


# ---- spec checks ----


def test_valid_spec_passes_and_round_trips_as_json() -> None:
    full = spec(budget_minor=10_000, holdout_percent=2.5, cap=Cap(2, 7), quiet=NIGHT,
                start_at=datetime(2024, 1, 1, tzinfo=UTC),
                offer=specs.Offer("XMAS", datetime(2024, 1, 31, tzinfo=UTC), "10% off"))
    assert specs.check(full) is full
    assert specs.from_json(specs.to_json(full)) == full


def test_spec_problems_are_all_named() -> None:
    bad = spec(name="", goal="world-domination", segment="no spaces allowed", template="{oops}", currency="gbp",
               budget_minor=0, holdout_percent=150.0, cap=Cap(0, 7), quiet=QuietHours(time(1), time(1)),
               routes=(Route("fax", "x"), Route("email", "Bad Name", -1), Route("email", "m2")))
    with pytest.raises(InvalidArgument) as caught:
        specs.check(bad)
    message = str(caught.value)
    for part in ("name must be", "goal 'world-domination' is unknown", "segment must name", "channels[0].channel 'fax'",
                 "channels[1].partner", "channels[1].cost_per_contact_minor", "channels[2]: channel email is listed twice",
                 "template: template field {oops}", "currency must be an ISO 4217", "budget must be positive",
                 "holdout_percent must be within 0-100", "frequency_cap", "quiet_hours start and end must differ"):
        assert part in message, part
    assert specs.problems(spec(goal="custom")) == ["goal_description is required for a custom goal"]
    assert specs.problems(spec(routes=())) == ["channels: at least one channel with its partner is required"]


def test_hh_mm() -> None:
    assert specs.parse_hh_mm("07:30", "x") == time(7, 30)
    for text in ("7:30", "24:00", "12:60", "noon"):
        with pytest.raises(InvalidArgument, match="x must be a local time HH:MM"):
            specs.parse_hh_mm(text, "x")
