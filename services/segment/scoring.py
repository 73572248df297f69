"""Scores a model audience: the goal's current model over every customer's features now, cut to members."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd

from services.common.errors import FailedPrecondition
from services.segment import audiences, persist, predict
from services.segment.audiences import ModelAudience, ScoredMembers
from services.segment.frame import PortraitFrame
from services.segment.store import ModelInfo, SegmentStore
from services.segment.training import LineSource
from services.segment.traits import ID_COLUMN


def describe(audience: ModelAudience, model: ModelInfo) -> str:
    """What chose a version's members, as its `rule` text says it."""
    q = model.quality
    verdict = "better than chance" if q.better_than_chance else "NOT better than chance"
    return f"{audience.describe()} (model version {model.version}, held-out AUC {q.auc:.3f}, {verdict})"


class Scorer:
    """Loads each goal's current model once (from the store, through persist's checks) and scores with it."""

    def __init__(self, store: SegmentStore, lines: LineSource, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.lines = lines
        self.clock = clock
        self._loaded: dict[str, tuple[int, Any]] = {}
        self._guard = threading.Lock()

    def current(self, goal: str) -> tuple[ModelInfo, Any]:
        """The goal's current model and its fitted estimator; FailedPrecondition when there is none."""
        model = self.store.current_model(goal)
        if model is None:
            raise FailedPrecondition(f"no {goal} model has been trained yet; train one first "
                                     f"(TrainModel, or POST /v1/predictive-models/{goal}/train)")
        with self._guard:
            loaded = self._loaded.get(goal)
            if loaded is not None and loaded[0] == model.version:
                return model, loaded[1]
        found = self.store.model_data(goal, model.version)
        if found is None:  # pruned between the two reads: the next refresh sees the newer one
            raise FailedPrecondition(f"the {goal} model changed while it was loaded; try again")
        try:
            estimator = persist.loads(*found)
        except persist.UntrustedModel as error:
            raise FailedPrecondition(f"the stored {goal} model version {model.version} cannot be loaded ({error}); "
                                     "train the goal again") from None
        with self._guard:
            self._loaded[goal] = (model.version, estimator)
        return model, estimator

    def members(self, audience: ModelAudience, frame: PortraitFrame) -> ScoredMembers:
        """The audience's members among the cached portraits, with their scores."""
        model, estimator = self.current(audience.goal)
        lines = self.lines.lines()
        keys = pd.Series(frame.keys, index=frame.data[ID_COLUMN].to_numpy())
        if lines.empty:
            scores = pd.Series([], dtype=float)
        else:
            candidates = predict.candidates(audience.goal, predict.features(lines, pd.Timestamp(self.clock())))
            proba = estimator.predict_proba(candidates[list(model.features)])[:, 1] if len(candidates) else []
            scores = pd.Series(proba, index=candidates.index, dtype=float)
        member_keys, member_scores = audiences.members(scores, keys, audience)
        return ScoredMembers(member_keys, member_scores, model.version, describe(audience, model))
