"""Campaign operations the API offers: define, launch (freeze audience, holdout, outbox), move through states,
register partners."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from services.campaign import holdout, metrics, signing
from services.campaign import spec as specs
from services.campaign.clients import Audiences
from services.campaign.states import Action, State
from services.campaign.store import CampaignInfo, CampaignStore, NewPartner, PartnerInfo
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound

log = logging.getLogger(__name__)
MODES = ("push", "pull")
DEFAULT_RATE = 100
DEFAULT_BATCH = 500
MAX_BATCH = 5000
MIN_SECRET = 16


@dataclass(frozen=True, slots=True)
class PartnerInput:
    name: str
    endpoint: str
    rate_limit_per_s: int
    batch_size: int
    mode: str
    channel: str
    secret: str = ""


@dataclass(frozen=True, slots=True)
class Registered:
    partner: PartnerInfo
    api_key: str
    secret: str


class Campaigns:
    def __init__(self, store: CampaignStore, audiences: Audiences | None, clock: Callable[[], datetime],
                 wall: Callable[[], datetime]) -> None:
        self.store = store
        self.audiences = audiences
        self.clock = clock
        self.wall = wall

    def _check_partners(self, spec: specs.Spec) -> None:
        known = {p.name: p for p in self.store.partners()}
        problems = []
        for i, route in enumerate(spec.routes):
            partner = known.get(route.partner)
            if partner is None:
                problems.append(f"channels[{i}].partner {route.partner!r} is not registered")
            elif partner.channel != route.channel:
                problems.append(f"channels[{i}]: partner {route.partner!r} carries {partner.channel}, not {route.channel}")
        if problems:
            raise InvalidArgument("; ".join(problems))

    def create(self, spec: specs.Spec) -> CampaignInfo:
        specs.check(spec)
        self._check_partners(spec)
        return self.store.create_campaign(spec, self.clock())

    def update(self, campaign_id: int, spec: specs.Spec) -> CampaignInfo:
        specs.check(spec)
        self._check_partners(spec)
        return self.store.update_campaign(campaign_id, spec)

    def launch(self, campaign_id: int, origin_channels: tuple[tuple[str, tuple[str, ...]], ...] = (),
               channel_rules_version: int = 0) -> CampaignInfo:
        """Freezes the segment's current version as the audience, and the channel map by origin sales channel
        with the spec, and writes the outbox in one transaction."""
        current = self.store.get_campaign(campaign_id, counts=False)
        if current.state is not State.DRAFT:  # fail before streaming a large audience; the store checks again
            raise FailedPrecondition(f"cannot launch a campaign that is {current.state.value}; it must be draft")
        if self.audiences is None:
            raise FailedPrecondition("the campaign service has no segment address: cannot read audiences")
        self._check_partners(current.spec)
        started = time.perf_counter()
        version, members = self.audiences.members(current.spec.segment)
        if version == 0:
            raise FailedPrecondition(f"segment {current.spec.segment!r} has no version yet; refresh it first")
        percent = current.spec.holdout_percent
        audience = [(customer, holdout.in_holdout(campaign_id, customer, percent)) for customer in members]
        now = self.clock()
        start_ahead = current.spec.start_at is not None and current.spec.start_at > now
        frozen = replace(current.spec, origin_channels=origin_channels, channel_rules_version=channel_rules_version)
        launched = self.store.launch(campaign_id, version, audience, now, self.wall(), start_ahead, frozen)
        metrics.LAUNCHED.inc(len(audience))
        log.info("campaign launched", extra={"campaign_id": campaign_id, "audience": len(audience),
                                             "version": version, "seconds": round(time.perf_counter() - started, 3)})
        return launched

    def pause(self, campaign_id: int) -> CampaignInfo:
        return self.store.transition(campaign_id, Action.PAUSE, self.clock())

    def resume(self, campaign_id: int) -> CampaignInfo:
        current = self.store.get_campaign(campaign_id, counts=False)
        now = self.clock()
        ahead = current.spec.start_at is not None and current.spec.start_at > now
        return self.store.transition(campaign_id, Action.RESUME, now, start_ahead=ahead)

    def cancel(self, campaign_id: int) -> CampaignInfo:
        return self.store.transition(campaign_id, Action.CANCEL, self.clock())

    # ---- partners ----

    def register_partner(self, given: PartnerInput) -> Registered:
        problems = []
        if not specs.PARTNER_NAME.fullmatch(given.name):
            problems.append("name must be 1-64 lower-case letters, digits, - or _, starting with a letter or digit")
        if given.mode not in MODES:
            problems.append("mode must be push or pull")
        if given.channel not in specs.CHANNELS:
            problems.append(f"channel must be one of: {', '.join(specs.CHANNELS)}")
        if given.mode == "push" and not given.endpoint.startswith(("http://", "https://")):
            problems.append("endpoint must be an http(s) URL for a push partner")
        if not 0 <= given.rate_limit_per_s <= 1_000_000:
            problems.append("rate_limit_per_s must be 1-1000000 (0 for the default 100)")
        if not 0 <= given.batch_size <= MAX_BATCH:
            problems.append(f"batch_size must be 1-{MAX_BATCH} (0 for the default {DEFAULT_BATCH})")
        if given.secret and len(given.secret) < MIN_SECRET:
            problems.append(f"secret must be at least {MIN_SECRET} characters (or empty to generate one)")
        if problems:
            raise InvalidArgument("; ".join(problems))
        api_key = signing.new_api_key()
        secret = given.secret or signing.new_secret()
        partner = self.store.add_partner(NewPartner(
            given.name, given.endpoint, secret, signing.key_hash(api_key), given.rate_limit_per_s or DEFAULT_RATE,
            given.batch_size or DEFAULT_BATCH, given.mode, given.channel), self.clock())
        return Registered(partner, api_key, secret)

    def rotate_key(self, name: str) -> str:
        if not specs.PARTNER_NAME.fullmatch(name):
            raise NotFound(f"there is no partner named {name!r}")
        api_key = signing.new_api_key()
        self.store.set_partner_key(name, signing.key_hash(api_key))
        return api_key
