"""The segment service's settings: its prefix, ports and defaults; no profile address means no sync and no models."""

from __future__ import annotations

import pytest

from services.segment.__main__ import _profile_exports
from services.segment.config import SegmentSettings


def test_defaults_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = SegmentSettings()
    assert (settings.service_name, settings.grpc_port, settings.metrics_port) == ("segment", 50052, 9102)
    assert settings.profile_addr == "127.0.0.1:50051" and settings.versions_kept == 10
    monkeypatch.setenv("MARKSMAN_SEGMENT_VERSIONS_KEPT", "3")
    monkeypatch.setenv("MARKSMAN_SEGMENT_PROFILE_ADDR", "profile:50051")
    monkeypatch.setenv("MARKSMAN_PROFILE_GRPC_PORT", "1")  # another service's prefix is ignored
    settings = SegmentSettings()
    assert (settings.versions_kept, settings.profile_addr, settings.grpc_port) == (3, "profile:50051", 50052)


def test_retention_keeps_at_least_one_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKSMAN_SEGMENT_VERSIONS_KEPT", "0")
    with pytest.raises(ValueError):
        SegmentSettings()


def test_without_a_profile_address_there_is_no_export() -> None:
    assert _profile_exports(SegmentSettings(profile_addr="")) is None


def test_model_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = SegmentSettings()
    assert (settings.models_kept, settings.interactions_page_size, settings.interactions_max_age_s) == (10, 5000, 900)
    monkeypatch.setenv("MARKSMAN_SEGMENT_INTERACTIONS_PAGE_SIZE", "5001")  # above profile's limit
    with pytest.raises(ValueError):
        SegmentSettings()
