"""The gRPC error a call raised, for tests that check status codes and details."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    """The error a call raised (it must raise one)."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value
