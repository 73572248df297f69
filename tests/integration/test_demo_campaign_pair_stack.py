"""The demo's campaign pair on a slice of the real retail data across the real processes: audiences cut and the
estimate printed while profile holds only the orders before the cut-off, both campaigns sent to the sample
partner at the campaign service's pinned clock, the later orders loaded, and the comparison table printed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from services.common.clock import parse_instant
from services.demo import campaigns, retail
from services.demo.batches import post_all
from services.demo.run import DATA_FILE
from services.stack import Stack

pytestmark = pytest.mark.integration
AS_OF = "2011-12-10T00:00:00Z"
# Every n-th customer of the data: a few hundred customers keep the run short and the audiences non-trivial.
EVERY = 6


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("demo-campaigns"), ephemeral_ports=True,
                    env={"MARKSMAN_AS_OF": AS_OF, "MARKSMAN_CAMPAIGN_POLL_S": "0.1",
                         "MARKSMAN_GATEWAY_UPSTREAM_TIMEOUT_S": "30"},
                    service_env={"campaign": {"MARKSMAN_AS_OF": campaigns.CUTOFF}})
    running.start(timeout=180)
    yield running
    running.stop()


def test_campaign_pair_on_a_slice(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    if not DATA_FILE.exists():
        pytest.skip(f"the retail data is not at {DATA_FILE}")
    frame = retail.load_frame(DATA_FILE)
    ids = sorted(frame["CustomerID"].dropna().unique())[::EVERY]
    frame = frame[frame["CustomerID"].isin(ids)]
    keys = stack.api_keys()
    events_before, events_after = campaigns.split_events(retail.to_events(frame))
    assert events_before and events_after
    headers = {"Authorization": f"Bearer {keys['admin']}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=300) as client, \
            httpx.Client(base_url=stack.gateway_url, timeout=300, headers=headers) as admin:
        post_all(client, "/v1/customers", keys["platform"], "customers", retail.to_customers(frame), 1000)
        post_all(client, "/v1/events", keys["platform"], "events", events_before, 1000)
        pair = campaigns.run_first_half(admin, frame, parse_instant(AS_OF))
        assert pair is not None
        first = capsys.readouterr().out
        later = post_all(client, "/v1/events", keys["platform"], "events", events_after, 1000)
        assert later["rejected"] == 0
        answer = campaigns.print_comparison(admin, pair)
        out = capsys.readouterr().out
        blanket, precision = (admin.get(f"/v1/campaigns/{cid}").json() for cid in (pair.blanket_id, pair.precision_id))
    print(first + out)  # shown with -s
    # The estimate came before sending, with both audiences on one budget.
    assert "predicted before sending" in first and "expected responses" in first and "rule: bought in 90 days" in first
    # Every message left at the pinned clock; none is pending, failed or dead.
    for campaign in (blanket, precision):
        c = campaign["counts"]
        assert campaign["launched_at"].startswith("2011-11-01") and c["sent"] > 0
        assert c["pending"] + c["queued"] + c["failed"] + c["dead"] == 0
        assert c["sent"] + c["skipped"] == c["targeted"]
    assert blanket["definition"]["budget_minor"] == precision["definition"]["budget_minor"]
    # The table: cost per contact 5.00 against 12.50, responses from the real later orders.
    rows = {line.split("  ")[0].strip(): line.split() for line in answer["table"].splitlines()}
    assert rows["cost per contact"][-2:] == ["5.00", "12.50"]
    assert int(rows["responses"][-2].replace(",", "")) == answer["first"]["responses"] > 0
    assert answer["first"]["targeted"] == blanket["counts"]["targeted"]
    assert answer["second"]["cost"]["amount_minor"] == 1250 * precision["counts"]["sent"]
    assert re.search(r"uplift 95% CI\s+-?\d", answer["table"])
    assert "campaign pair measured" in out and "not the message's effect" in out
