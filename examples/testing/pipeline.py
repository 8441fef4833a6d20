"""A small pipeline to show how wfkit workflows are tested: fetch the day's orders from a
flaky API (with retries), total them, and publish a report (with a timeout)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Protocol

from wfkit import flow, get_run_logger, task


class OrdersAPI(Protocol):
    def orders(self, day: str) -> list[dict[str, Any]]: ...


class Sink(Protocol):
    def write(self, report: dict[str, Any]) -> None: ...


@task(retries=3, retry_delay_seconds=[10, 30, 60])
def fetch_orders(api: OrdersAPI, day: str) -> list[dict[str, Any]]:
    return api.orders(day)


@task
def total(orders: list[dict[str, Any]]) -> float:
    return sum(order["amount"] for order in orders)


@task(timeout_seconds=5)
def publish(report: dict[str, Any], sink: Sink) -> None:
    sink.write(report)
    get_run_logger().info("published the report for %s", report["day"])


@flow(flow_run_name="daily-report-{day}")
def daily_report(day: str, api: OrdersAPI, sink: Sink) -> dict[str, Any]:
    orders = fetch_orders(api, day)
    report = {
        "day": day,
        "total": total(orders),
        "generated_at": datetime.now(UTC).isoformat(),
    }
    publish(report, sink)
    return report


class StaticAPI:
    """An API that answers from a dict, failing the first ``failures`` calls."""

    def __init__(self, orders: dict[str, list[dict[str, Any]]], failures: int = 0) -> None:
        self._orders = orders
        self.failures = failures
        self.calls = 0

    def orders(self, day: str) -> list[dict[str, Any]]:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"the orders API is down (call {self.calls})")
        return self._orders.get(day, [])


class ListSink:
    """A sink that keeps reports in a list, taking ``delay`` seconds per write."""

    def __init__(self, delay: float = 0.0) -> None:
        self.reports: list[dict[str, Any]] = []
        self.delay = delay

    def write(self, report: dict[str, Any]) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.reports.append(report)


if __name__ == "__main__":
    api = StaticAPI({"2026-01-01": [{"amount": 12.5}, {"amount": 7.5}]})
    print(daily_report("2026-01-01", api, ListSink()))
