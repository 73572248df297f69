"""The segment gRPC servicer: protos to domain values and back, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.common.v1 import common_pb2
from marksman.segment.v1 import segment_pb2, segment_pb2_grpc

from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.ids import is_valid_id
from services.segment.audiences import ModelAudience, check_audience
from services.segment.rules import RuleError
from services.segment.segments import Segments
from services.segment.store import KIND_MODEL, KIND_RULE, ModelInfo, SegmentInfo, VersionInfo
from services.segment.training import Trainer

_KINDS = {KIND_RULE: segment_pb2.SEGMENT_KIND_RULE, KIND_MODEL: segment_pb2.SEGMENT_KIND_MODEL}


def _ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def version_to_proto(v: VersionInfo) -> segment_pb2.SegmentVersion:
    return segment_pb2.SegmentVersion(number=v.number, size=v.size, portraits=v.portraits, seconds=v.seconds,
                                      created_at=_ts(v.created_at), rule=v.rule, model_version=v.model_version or 0)


def audience_to_proto(a: ModelAudience) -> segment_pb2.ModelAudience:
    if a.threshold is not None:
        return segment_pb2.ModelAudience(goal=a.goal, threshold=a.threshold)
    return segment_pb2.ModelAudience(goal=a.goal, top_k=a.top_k or 0)


def audience_from_proto(m: segment_pb2.ModelAudience) -> ModelAudience:
    cut = m.WhichOneof("cut")
    return check_audience(m.goal, m.top_k if cut == "top_k" else None, m.threshold if cut == "threshold" else None)


def segment_to_proto(s: SegmentInfo) -> segment_pb2.Segment:
    return segment_pb2.Segment(
        name=s.name, kind=_KINDS.get(s.kind, segment_pb2.SEGMENT_KIND_UNSPECIFIED), rule=s.rule,
        description=s.description, built_in=s.built_in, created_at=_ts(s.created_at),
        current=version_to_proto(s.current) if s.current else None,
        model=audience_to_proto(s.model) if s.model else None,
    )


def model_to_proto(m: ModelInfo, current: bool) -> segment_pb2.PredictiveModel:
    q = m.quality
    return segment_pb2.PredictiveModel(
        goal=m.goal, version=m.version, trained_at=_ts(m.trained_at), horizon_days=m.horizon_days,
        seed_segment=m.seed_segment, seed_version=m.seed_version, parameters=m.parameters, lines=m.lines,
        customers=m.customers, train_size=m.train_size, train_base_rate=m.train_base_rate,
        fit_seconds=m.fit_seconds, seconds=m.seconds, evaluation=m.evaluation, features=list(m.features),
        current=current,
        quality=segment_pb2.ModelQuality(
            auc=q.auc, auc_se=q.auc_se, top_decile_lift=q.top_decile_lift,
            base_rate=q.base_rate, positives=q.positives,
            held_out=q.size, better_than_chance=q.better_than_chance),
    )


def _customer_id(value: str) -> str:
    if not is_valid_id(value):
        raise InvalidArgument("customer_id must be 1-128 characters of letters, digits and ._:@+=-")
    return value


class SegmentServicer(segment_pb2_grpc.SegmentServiceServicer):
    def __init__(self, segments: Segments, trainer: Trainer | None = None) -> None:
        self.segments = segments
        self.trainer = trainer

    def CreateSegment(self, request: segment_pb2.CreateSegmentRequest, context: grpc.ServicerContext) -> segment_pb2.CreateSegmentResponse:
        model = audience_from_proto(request.model) if request.HasField("model") else None
        segment = self.segments.create(request.name, request.rule, request.description, model)
        return segment_pb2.CreateSegmentResponse(segment=segment_to_proto(segment))

    def ValidateRule(self, request: segment_pb2.ValidateRuleRequest, context: grpc.ServicerContext) -> segment_pb2.ValidateRuleResponse:
        try:
            rule = self.segments.compile(request.rule)
        except RuleError as error:
            return segment_pb2.ValidateRuleResponse(valid=False, problems=[
                segment_pb2.RuleProblem(line=p.pos.line, column=p.pos.column, message=p.message)
                for p in error.problems])
        return segment_pb2.ValidateRuleResponse(valid=True, traits=sorted(rule.traits), segments=sorted(rule.segments))

    def PreviewRule(self, request: segment_pb2.PreviewRuleRequest, context: grpc.ServicerContext) -> segment_pb2.PreviewRuleResponse:
        preview = self.segments.preview(request.rule, request.sample_size)
        return segment_pb2.PreviewRuleResponse(count=preview.count, portraits=preview.portraits,
                                               sample_customer_ids=preview.sample)

    def RefreshSegment(self, request: segment_pb2.RefreshSegmentRequest, context: grpc.ServicerContext) -> segment_pb2.RefreshSegmentResponse:
        return segment_pb2.RefreshSegmentResponse(version=version_to_proto(self.segments.refresh(request.name)))

    def GetSegment(self, request: segment_pb2.GetSegmentRequest, context: grpc.ServicerContext) -> segment_pb2.GetSegmentResponse:
        segment, versions = self.segments.get(request.name)
        return segment_pb2.GetSegmentResponse(segment=segment_to_proto(segment),
                                              versions=[version_to_proto(v) for v in versions])

    def ListSegments(self, request: segment_pb2.ListSegmentsRequest, context: grpc.ServicerContext) -> segment_pb2.ListSegmentsResponse:
        return segment_pb2.ListSegmentsResponse(segments=[segment_to_proto(s) for s in self.segments.list_segments()])

    def StreamMembers(self, request: segment_pb2.StreamMembersRequest, context: grpc.ServicerContext) -> Iterator[segment_pb2.StreamMembersResponse]:
        pages = self.segments.members(request.name, request.version, request.page_size, request.page_token,
                                      request.limit)
        for page in pages:
            yield segment_pb2.StreamMembersResponse(customer_ids=page.customer_ids, version=page.version,
                                                    next_page_token=page.next_token, scores=page.scores)

    def ListCustomerSegments(self, request: segment_pb2.ListCustomerSegmentsRequest, context: grpc.ServicerContext) -> segment_pb2.ListCustomerSegmentsResponse:
        held = self.segments.customer_segments(_customer_id(request.customer_id))
        return segment_pb2.ListCustomerSegmentsResponse(
            segments=[segment_pb2.CustomerSegment(name=name, version=number) for name, number in held])

    def SyncPortraits(self, request: segment_pb2.SyncPortraitsRequest, context: grpc.ServicerContext) -> segment_pb2.SyncPortraitsResponse:
        result = self.segments.sync(full=request.full)
        return segment_pb2.SyncPortraitsResponse(received=result.received, portraits=result.portraits,
                                                 seconds=result.seconds)

    def EraseCustomer(self, request: common_pb2.EraseCustomerRequest, context: grpc.ServicerContext) -> common_pb2.EraseCustomerResponse:
        erased, count = self.segments.erase(_customer_id(request.customer_id))
        return common_pb2.EraseCustomerResponse(erased=erased, records_deleted=count)

    def _trainer(self) -> Trainer:
        if self.trainer is None:
            raise FailedPrecondition("predictive models need profile's interactions, and no profile address is "
                                     "configured")
        return self.trainer

    def TrainModel(self, request: segment_pb2.TrainModelRequest, context: grpc.ServicerContext) -> segment_pb2.TrainModelResponse:
        model = self._trainer().train(request.goal, request.seed_segment, request.horizon_days)
        return segment_pb2.TrainModelResponse(model=model_to_proto(model, current=True))

    def ListModels(self, request: segment_pb2.ListModelsRequest, context: grpc.ServicerContext) -> segment_pb2.ListModelsResponse:
        models, untrained = self._trainer().list_models()
        return segment_pb2.ListModelsResponse(models=[model_to_proto(m, current=True) for m in models],
                                              untrained_goals=untrained)

    def GetModel(self, request: segment_pb2.GetModelRequest, context: grpc.ServicerContext) -> segment_pb2.GetModelResponse:
        versions = self._trainer().get(request.goal)
        return segment_pb2.GetModelResponse(
            current=model_to_proto(versions[0], current=True),
            versions=[model_to_proto(m, current=index == 0) for index, m in enumerate(versions)])
