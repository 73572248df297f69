"""The demo's predictive part: each goal's model trained through the gateway (so by the segment service), its
held-out quality as the API reports it, and one model audience created and refreshed."""

from __future__ import annotations

from typing import Any

import httpx

# The segment service's goals (GET /v1/predictive-models lists them); growth has two models.
GOALS = ("retention", "growth", "growth_new_category", "activation", "acquisition")
AUDIENCE = {"name": "retention-top-500", "model": {"goal": "retention", "top_k": 500},
            "description": "The 500 active customers most likely not to order in the next 90 days"}
# The first training reads every order line from profile; the next ones only what is new.
TRAIN_TIMEOUT_S = 600.0


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def quality_line(model: dict[str, Any]) -> str:
    """One goal's held-out figures as the demo prints them."""
    q = model["quality"]
    verdict = "" if q["better_than_chance"] else "  NOT better than chance"
    return (f"  {model['goal']:<20} AUC {_number(q['auc'], 3)} ± {_number(q['auc_se'], 3)}, top-decile lift "
            f"{_number(q['top_decile_lift'], 2)} (base rate {_number(q['base_rate'], 3)}, {q['held_out']:,} held "
            f"out; trained on {model['train_size']:,} in {model['seconds']:.1f} s, fit {model['fit_seconds']:.2f} s)"
            f"{verdict}")


def print_predictive_models(client: httpx.Client, keys: dict[str, str]) -> dict[str, Any]:
    """Trains every goal, prints its quality, then creates (once) and refreshes the retention audience."""
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    # Model audiences are cut from the portraits the segment service has cached: bring them up to date.
    client.post("/v1/admin/segments/sync", headers=admin).raise_for_status()
    models: dict[str, dict[str, Any]] = {}
    print("\npredictive models, trained through the gateway by the segment service (held-out figures):")
    for goal in GOALS:
        response = client.post(f"/v1/predictive-models/{goal}/train", headers=admin, timeout=TRAIN_TIMEOUT_S)
        response.raise_for_status()
        models[goal] = response.json()
        if goal == "retention":
            print(f"  ({models[goal]['evaluation']}; {models[goal]['lines']:,} order lines of "
                  f"{models[goal]['customers']:,} customers)")
        print(quality_line(models[goal]))
    created = client.post("/v1/segments", json=AUDIENCE, headers=admin)
    if created.status_code != 409:  # a second demo run finds it there
        created.raise_for_status()
    refreshed = client.post(f"/v1/segments/{AUDIENCE['name']}/refresh", headers=admin, timeout=TRAIN_TIMEOUT_S)
    refreshed.raise_for_status()
    version = refreshed.json()
    print(f"model audience '{AUDIENCE['name']}': {version['size']:,} customers of {version['portraits']:,} "
          f"(version {version['version']}, {version['rule']}, {version['seconds']:.2f} s)")
    return {"models": models, "audience": version}
