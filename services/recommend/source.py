"""What training reads from profile over gRPC: every interaction and every portrait, page by page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import grpc
import pandas as pd
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc

from services.common.errors import Unavailable, rpc_failure
from services.recommend.frames import customer_features, interactions_frame
from services.recommend.store import CustomerFeatures


class Source(Protocol):
    def interactions(self) -> pd.DataFrame: ...

    def customer_features(self) -> list[CustomerFeatures]: ...


class ProfileSource:
    """Reads profile's ExportInteractions and ExportPortraits streams from the start, each under one deadline."""

    def __init__(self, stub: profile_pb2_grpc.ProfileServiceStub, timeout_s: float, page_size: int) -> None:
        self.stub = stub
        self.timeout_s = timeout_s
        self.page_size = page_size

    def interactions(self) -> pd.DataFrame:
        request = profile_pb2.ExportInteractionsRequest(page_size=self.page_size)
        with _named("interaction"):
            pages = self.stub.ExportInteractions(request, timeout=self.timeout_s)
            return interactions_frame(page.interactions for page in pages)

    def customer_features(self) -> list[CustomerFeatures]:
        request = profile_pb2.ExportPortraitsRequest(page_size=self.page_size)
        with _named("portrait"):
            pages = self.stub.ExportPortraits(request, timeout=self.timeout_s)
            return [f for page in pages for f in customer_features(page.portraits)]


@contextmanager
def _named(what: str) -> Iterator[None]:
    """Turns a failed export into Unavailable naming it."""
    try:
        yield
    except grpc.RpcError as error:
        raise Unavailable(f"profile's {what} export failed ({rpc_failure(error)})") from None
