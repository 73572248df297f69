"""The domain-error to gRPC status mapping: codes, hidden internals, messages bounded for the trailer."""

from __future__ import annotations

import grpc

from services.common.errors import MAX_MESSAGE_BYTES, InvalidArgument, bounded, status_for


def test_a_domain_error_keeps_its_code_and_message() -> None:
    assert status_for(InvalidArgument("line 1, column 3: unknown trait 'x'")) == (
        grpc.StatusCode.INVALID_ARGUMENT, "line 1, column 3: unknown trait 'x'")


def test_an_unknown_error_never_shows_its_text() -> None:
    code, message = status_for(RuntimeError("password=hunter2"))
    assert code is grpc.StatusCode.INTERNAL and "hunter2" not in message


def test_a_message_echoing_a_long_input_is_cut_to_fit_the_trailer() -> None:
    long = "line 1, column 1: the number " + "0" * 10_000 + " alone is not a condition"
    code, message = status_for(InvalidArgument(long))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert len(message.encode()) <= MAX_MESSAGE_BYTES
    assert message.startswith("line 1, column 1: the number 000")
    assert message.endswith(f"({len(long) - message.index('...')} more characters)")


def test_multibyte_text_is_cut_on_a_character_boundary() -> None:
    message = bounded("王" * 2000)
    assert len(message.encode()) <= MAX_MESSAGE_BYTES
    assert message.startswith("王" * 600)
    assert bounded("short") == "short"
