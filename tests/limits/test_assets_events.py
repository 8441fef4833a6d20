"""Assets and events: @materialize as on Prefect's assets page
(docs/v3/how-to-guides/workflows/assets.mdx) and emit_event as on its events page
(docs/v3/concepts/events.mdx), recorded with their runs."""

from __future__ import annotations

import pytest

from wfkit import flow, task
from wfkit.assets import Asset, AssetProperties, add_asset_metadata, list_assets, materialize
from wfkit.events import emit_event, list_events
from wfkit.exceptions import ConfigurationError


def test_a_materializing_task_records_its_asset_with_its_run(h):
    @materialize("s3://my-bucket/processed-data.csv")
    def process_data(data: dict) -> dict:
        return data

    @flow
    def data_pipeline(data: dict):
        return process_data(data)

    assert data_pipeline({"a": 1}) == {"a": 1}
    (asset,) = list_assets()
    run = h.task_run(process_data)
    assert (asset.key, asset.succeeded, asset.task_run_id) == (
        "s3://my-bucket/processed-data.csv",
        True,
        run.id,
    )
    assert asset.flow_run_id == h.flow_run(data_pipeline).id
    assert run.state_names == ["Pending", "Running", "Completed"]


def test_dependencies_come_from_upstream_materializations_and_asset_deps(h):
    raw = Asset("s3://bucket/raw.csv", AssetProperties(name="Raw"))

    @materialize(raw)
    def extract():
        return [1, 2]

    @materialize("s3://bucket/clean.csv", asset_deps=["postgres://db/public/users"])
    def transform(rows):
        add_asset_metadata("s3://bucket/clean.csv", {"rows": len(rows)})
        return rows

    @flow
    def pipeline():
        return transform.submit(extract.submit()).result()

    pipeline()
    assets = {a.key: a for a in list_assets()}
    assert assets["s3://bucket/raw.csv"].depends_on == ()
    assert assets["s3://bucket/clean.csv"].depends_on == (
        "postgres://db/public/users",
        "s3://bucket/raw.csv",
    )
    assert assets["s3://bucket/clean.csv"].metadata == {"rows": 2}


def test_a_failed_body_records_a_failed_materialization(h):
    @materialize("s3://bucket/broken.csv", retries=1)
    def broken():
        raise ValueError("boom")

    @flow
    def main():
        return broken(return_state=True).is_failed()

    assert main() is True
    names = [e.event for e in list_events("prefect.asset.*")]
    assert names == ["prefect.asset.materialization.failed"] * 2  # one per attempt
    assert list_assets()[0].succeeded is False


@pytest.mark.parametrize(
    "key", ["no-scheme/data.csv", "s3://has space", "s3://quote'd", "", "x" * 600, 7]
)
def test_a_malformed_asset_key_is_refused_at_decoration(key):
    with pytest.raises(ConfigurationError, match="asset"):
        materialize(key)


def test_materialize_needs_an_asset():
    with pytest.raises(ConfigurationError, match="at least one asset"):
        materialize()


def test_add_asset_metadata_outside_a_materializing_run_is_refused(h):
    with pytest.raises(ConfigurationError, match="outside a task run"):
        add_asset_metadata("s3://bucket/x.csv", {"a": 1})


def test_emitted_events_are_recorded_with_the_run(h):
    @task
    def ship(order: int):
        emit_event(
            "order.shipped",
            resource={"prefect.resource.id": f"order.{order}"},
            related=[{"prefect.resource.id": "customer.9", "prefect.resource.role": "buyer"}],
            payload={"items": 3},
        )

    @flow
    def orders():
        ship(1)
        emit_event("orders.done", {"prefect.resource.id": "batch.1"})

    orders()
    shipped, done = list_events()
    assert (shipped.event, shipped.resource, shipped.payload) == (
        "order.shipped",
        {"prefect.resource.id": "order.1"},
        {"items": 3},
    )
    assert shipped.related[0]["prefect.resource.role"] == "buyer"
    assert shipped.task_run_id == h.task_run(ship).id
    assert done.task_run_id is None and done.flow_run_id == h.flow_run(orders).id
    assert list_events(run_id=h.task_run(ship).id) == [shipped]
    assert list_events(resource_id="batch.1") == [done]
    assert shipped.occurred == h.clock.now()


@pytest.mark.parametrize(
    ("event", "resource", "payload", "named"),
    [
        ("", {"prefect.resource.id": "x"}, None, "event=''"),
        ("e", {"name": "x"}, None, "resource="),
        ("e", {"prefect.resource.id": 3}, None, "resource="),
        ("e", {"prefect.resource.id": "x"}, {"v": object()}, "payload="),
    ],
)
def test_bad_events_are_refused(h, event, resource, payload, named):
    with pytest.raises(ConfigurationError, match=named):
        emit_event(event, resource, payload=payload)
    assert list_events() == []
