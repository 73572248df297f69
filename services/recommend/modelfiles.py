"""The model files of each version under <data_dir>/models/<version>/, written whole or not at all."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from services.recommend.recommender import ARRAYS_FILE, Recommender


class ModelFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, version: int) -> Path:
        return self.root / str(int(version))

    def save(self, version: int, recommender: Recommender) -> None:
        """Writes into a scratch folder and renames it: a crash never leaves a half-written version."""
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(version)
        scratch = self.root / f".{version}.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        recommender.save(scratch)
        old = self.root / f".{version}.old"
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        scratch.rename(target)
        shutil.rmtree(old, ignore_errors=True)

    def load(self, version: int) -> Recommender:
        return Recommender.load(self.path(version))

    def holds(self, version: int, customer_id: str) -> bool:
        """Whether the version's files have a row for the customer (reads only the id array)."""
        with np.load(self.path(version) / ARRAYS_FILE, allow_pickle=False) as data:
            return bool(np.isin(customer_id, data["customer_ids"]))

    def versions(self) -> list[int]:
        """Versions with files, oldest first."""
        if not self.root.exists():
            return []
        return sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())

    def prune(self, keep: Iterable[int]) -> list[int]:
        """Deletes the files of every version not in `keep` (and leftovers of interrupted writes)."""
        kept = set(keep)
        removed = [v for v in self.versions() if v not in kept]
        for version in removed:
            shutil.rmtree(self.path(version), ignore_errors=True)
        if self.root.exists():
            for leftover in self.root.glob(".*.partial"):
                shutil.rmtree(leftover, ignore_errors=True)
        return removed
