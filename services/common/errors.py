"""Domain errors every service raises, and their single mapping to gRPC status codes."""

from __future__ import annotations

import grpc


class DomainError(Exception):
    """Base of errors a caller can act on; the message is shown to the caller as is."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE


# The message travels percent-encoded in the grpc-message trailer, and gRPC refuses trailers over its
# metadata limit (8 KB soft, 16 KB hard) with RESOURCE_EXHAUSTED, at random between the two: a message that
# echoes a long input (a 10,000-character rule) would turn a clear INVALID_ARGUMENT into a flaky failure.
MAX_MESSAGE_BYTES = 2048


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and message for an exception; unknown errors never leak their text."""
    if isinstance(error, DomainError):
        return error.code, bounded(str(error))
    return grpc.StatusCode.INTERNAL, "internal error; see the service log"


def bounded(message: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """`message` cut to at most `limit` UTF-8 bytes, saying how much was cut."""
    encoded = message.encode()
    if len(encoded) <= limit:
        return message
    kept = encoded[: limit - 40].decode(errors="ignore")
    return f"{kept}... ({len(message) - len(kept)} more characters)"


def rpc_failure(error: grpc.RpcError) -> str:
    """"CODE: details" of a failed call another service answered (or that never reached it)."""
    # A failed call is also a grpc.Call with code() and details(); RpcError alone promises neither.
    code = error.code().name if hasattr(error, "code") else "UNKNOWN"
    details = error.details() if hasattr(error, "details") else str(error)
    return f"{code}: {details}"
