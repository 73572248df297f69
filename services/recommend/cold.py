"""Cold items in a model trained without item features: a ridge map from features to learned item vectors."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import lsqr

# Ridge penalty on the feature vectors: the rows of a normalised feature matrix sum to 1, so a feature
# on m items has about m / n^2 on its diagonal (n features per item); 0.1 shrinks a feature seen on a
# handful of items most of the way to the mean item, and barely touches one seen on hundreds.
RIDGE = 0.1


def feature_map(
    described: sp.csr_matrix, vectors: npt.NDArray[np.float32], warm: npt.NDArray[np.intp], ridge: float = RIDGE
) -> npt.NDArray[np.float32]:
    """Per feature, a vector in the item layout such that an item is about the mean of its features' rows.

    Fitted by ridge regression (scipy's lsqr with damping) of the trained items' vectors on their
    row-normalised features, around the mean trained item; a feature no trained item has gets the mean.
    """
    width = vectors.shape[1]
    features = described.shape[1]
    rows = described[warm]
    has = np.diff(rows.indptr) > 0
    if features == 0 or not has.any():
        return np.zeros((features, width), dtype=np.float32)
    rows, target = rows[has], vectors[warm][has].astype(np.float64)
    mean = target.mean(axis=0)
    damp = float(np.sqrt(ridge))
    columns = [lsqr(rows, target[:, j] - mean[j], damp=damp)[0] for j in range(width)]
    # Rows of the feature matrix sum to 1, so adding the mean to every feature adds it to every item.
    return (np.column_stack(columns) + mean).astype(np.float32)
