"""Fitted estimators to bytes and back with skops (never pickle): loading builds only types we allow."""

from __future__ import annotations

import hashlib
import zipfile
from typing import Any

# Why skops and not joblib/pickle: unpickling runs whatever the bytes say, so a tampered model row
# would run code in this service. skops stores the estimator as data and, on load, refuses every
# type that is neither its default-trusted scikit-learn/numpy set nor listed here. The one extra is
# HistGradientBoosting's tree predictor, a plain holder of the fitted trees' node arrays.
TRUSTED: tuple[str, ...] = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


class UntrustedModel(Exception):
    """The stored bytes are not a model this service wrote: wrong digest, or a type it does not allow."""


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(estimator: Any) -> tuple[bytes, str]:
    """The estimator as a compressed skops file, with its SHA-256."""
    import skops.io as sio  # imports every scikit-learn estimator: paid at the first training, not at start

    data = sio.dumps(estimator, compression=zipfile.ZIP_DEFLATED)
    return data, digest_of(data)


def loads(data: bytes, digest: str) -> Any:
    """The estimator, if `data` has the digest stored with it and holds only allowed types."""
    import skops.io as sio

    if digest_of(data) != digest:
        raise UntrustedModel("the stored model does not match its digest (changed or corrupt)")
    unexpected = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED))
    if unexpected:
        raise UntrustedModel(f"the stored model holds types this service does not load: {', '.join(unexpected)}")
    return sio.loads(data, trusted=list(TRUSTED))
