"""Fitted models to skops bytes and back: same predictions, digest checked, foreign types refused (no pickle)."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

from services.segment import persist, predict


def _fitted() -> object:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    x[rng.random(x.shape) < 0.1] = np.nan  # the model handles missing values; the bytes must keep that
    y = (np.nan_to_num(x[:, 0]) + rng.normal(size=400) > 0).astype(int)
    return predict.make_classifier().fit(x, y)


def test_round_trip_predicts_the_same() -> None:
    model = _fitted()
    data, digest = persist.dumps(model)
    assert data[:2] == b"PK" and len(digest) == 64  # a zip of data, not a pickle stream
    loaded = persist.loads(data, digest)
    x = np.random.default_rng(1).normal(size=(50, 3))
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))  # type: ignore[attr-defined]


def test_changed_bytes_are_refused() -> None:
    data, digest = persist.dumps(_fitted())
    with pytest.raises(persist.UntrustedModel, match="does not match its digest"):
        persist.loads(data[:-1] + bytes([data[-1] ^ 1]), digest)


def test_a_type_outside_the_allowed_set_is_refused_even_with_a_matching_digest() -> None:
    # What a tampered row would hold: a valid skops file of an estimator that calls os.system.
    data = sio.dumps(FunctionTransformer(func=os.system), compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(persist.UntrustedModel, match=r"types this service does not load: posix\.system"):
        persist.loads(data, persist.digest_of(data))
