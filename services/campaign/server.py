"""The campaign gRPC servicer: protos to domain values and back, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import grpc
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.campaign.v1 import campaign_pb2_grpc
from marksman.common.v1 import common_pb2

from services.campaign import convert, estimating
from services.campaign.campaigns import Campaigns, PartnerInput
from services.campaign.estimating import AudienceSpec, Estimator, history_of, text
from services.campaign.store import CampaignStore
from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.ids import is_valid_id

MAX_PAGE = 1000
DEFAULT_PAGE = 100
# Computes a campaign's report (services/campaign/report.py once wired); None: counts only.
ReportFn = Callable[[int], pb.CampaignReport]
CompareFn = Callable[[int, int], pb.CompareCampaignsResponse]


def _id(value: int) -> int:
    if value <= 0:
        raise InvalidArgument("id must be a positive campaign id")
    return value


def _page_token(token: str) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidArgument("page_token is not one this service returned")
    return int(token)


class CampaignServicer(campaign_pb2_grpc.CampaignServiceServicer):
    def __init__(self, campaigns: Campaigns, store: CampaignStore, report: ReportFn,
                 clock: Callable[[], datetime], *, compare: CompareFn | None = None,
                 estimator: Estimator | None = None) -> None:
        self.campaigns = campaigns
        self.store = store
        self.report = report
        self.clock = clock
        self.compare = compare
        self.estimator = estimator or Estimator(None)

    def CreateCampaign(self, request: pb.CreateCampaignRequest, context: grpc.ServicerContext) -> pb.CreateCampaignResponse:
        created = self.campaigns.create(convert.spec_from_proto(request.spec))
        return pb.CreateCampaignResponse(campaign=convert.campaign_to_proto(self.store.get_campaign(created.id)))

    def UpdateCampaign(self, request: pb.UpdateCampaignRequest, context: grpc.ServicerContext) -> pb.UpdateCampaignResponse:
        updated = self.campaigns.update(_id(request.id), convert.spec_from_proto(request.spec))
        return pb.UpdateCampaignResponse(campaign=convert.campaign_to_proto(self.store.get_campaign(updated.id)))

    def GetCampaign(self, request: pb.GetCampaignRequest, context: grpc.ServicerContext) -> pb.GetCampaignResponse:
        return pb.GetCampaignResponse(campaign=convert.campaign_to_proto(self.store.get_campaign(_id(request.id))))

    def ListCampaigns(self, request: pb.ListCampaignsRequest, context: grpc.ServicerContext) -> pb.ListCampaignsResponse:
        found = self.store.list_campaigns(convert.state_from_proto(request.state))
        return pb.ListCampaignsResponse(campaigns=[convert.campaign_to_proto(c) for c in found])

    def DeleteCampaign(self, request: pb.DeleteCampaignRequest, context: grpc.ServicerContext) -> pb.DeleteCampaignResponse:
        self.store.delete_campaign(_id(request.id))
        return pb.DeleteCampaignResponse()

    def _after(self, campaign_id: int) -> pb.Campaign:
        return convert.campaign_to_proto(self.store.get_campaign(campaign_id))

    def LaunchCampaign(self, request: pb.LaunchCampaignRequest, context: grpc.ServicerContext) -> pb.LaunchCampaignResponse:
        origins = convert.origin_channels_from_proto(request.channel_rules)
        self.campaigns.launch(_id(request.id), origins, request.channel_rules.rule_set_version)
        return pb.LaunchCampaignResponse(campaign=self._after(request.id))

    def PauseCampaign(self, request: pb.PauseCampaignRequest, context: grpc.ServicerContext) -> pb.PauseCampaignResponse:
        self.campaigns.pause(_id(request.id))
        return pb.PauseCampaignResponse(campaign=self._after(request.id))

    def ResumeCampaign(self, request: pb.ResumeCampaignRequest, context: grpc.ServicerContext) -> pb.ResumeCampaignResponse:
        self.campaigns.resume(_id(request.id))
        return pb.ResumeCampaignResponse(campaign=self._after(request.id))

    def CancelCampaign(self, request: pb.CancelCampaignRequest, context: grpc.ServicerContext) -> pb.CancelCampaignResponse:
        self.campaigns.cancel(_id(request.id))
        return pb.CancelCampaignResponse(campaign=self._after(request.id))

    def RegisterPartner(self, request: pb.RegisterPartnerRequest, context: grpc.ServicerContext) -> pb.RegisterPartnerResponse:
        p = request.partner
        registered = self.campaigns.register_partner(PartnerInput(
            p.name, p.endpoint, p.rate_limit_per_s, p.batch_size, convert.MODES[0].get(p.mode, ""),
            convert.CHANNELS[0].get(p.channel, ""), request.secret))
        return pb.RegisterPartnerResponse(partner=convert.partner_to_proto(registered.partner),
                                          api_key=registered.api_key, secret=registered.secret)

    def ListPartners(self, request: pb.ListPartnersRequest, context: grpc.ServicerContext) -> pb.ListPartnersResponse:
        return pb.ListPartnersResponse(partners=[convert.partner_to_proto(p) for p in self.store.partners()])

    def RotatePartnerKey(self, request: pb.RotatePartnerKeyRequest, context: grpc.ServicerContext) -> pb.RotatePartnerKeyResponse:
        return pb.RotatePartnerKeyResponse(api_key=self.campaigns.rotate_key(request.name))

    def ListDeliveries(self, request: pb.ListDeliveriesRequest, context: grpc.ServicerContext) -> pb.ListDeliveriesResponse:
        size = request.page_size or DEFAULT_PAGE
        if not 1 <= size <= MAX_PAGE:
            raise InvalidArgument(f"page_size must be 1-{MAX_PAGE}")
        state = convert.DELIVERY_STATES[0].get(request.state) if request.state else None
        if request.state and state is None:
            raise InvalidArgument("state is not a delivery state")
        rows = self.store.deliveries(_id(request.campaign_id), state, _page_token(request.page_token), size)
        return pb.ListDeliveriesResponse(deliveries=[convert.delivery_to_proto(d) for d in rows],
                                         next_page_token=str(rows[-1].id) if len(rows) == size else "")

    def GetCampaignReport(self, request: pb.GetCampaignReportRequest, context: grpc.ServicerContext) -> pb.GetCampaignReportResponse:
        return pb.GetCampaignReportResponse(report=self.report(_id(request.id)))

    def CompareCampaigns(self, request: pb.CompareCampaignsRequest, context: grpc.ServicerContext) -> pb.CompareCampaignsResponse:
        if self.compare is None:
            raise FailedPrecondition("reports are not wired in this process")
        return self.compare(_id(request.first_id), _id(request.second_id))

    def EstimateAudiences(self, request: pb.EstimateAudiencesRequest, context: grpc.ServicerContext) -> pb.EstimateAudiencesResponse:
        audiences = [AudienceSpec(a.name, a.segment, a.cost_per_contact_minor) for a in request.audiences]
        h = request.history
        currency = request.budget.currency
        results = self.estimator.estimate(
            audiences, request.budget.amount_minor, currency,
            history_of(h.response_rate, h.revenue_per_responder_minor, h.mean_score), request.scores_segment)
        return pb.EstimateAudiencesResponse(estimates=[estimating.to_proto(r, currency) for r in results],
                                            table=text(results, currency))

    def EraseCustomer(self, request: common_pb2.EraseCustomerRequest, context: grpc.ServicerContext) -> common_pb2.EraseCustomerResponse:
        if not is_valid_id(request.customer_id):
            raise InvalidArgument("customer_id must be 1-128 characters of letters, digits and ._:@+=-")
        changed = self.store.erase_customer(request.customer_id, self.clock())
        return common_pb2.EraseCustomerResponse(erased=changed > 0, records_deleted=changed)
