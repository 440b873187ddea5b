"""Prometheus metrics. With several worker processes, PROMETHEUS_MULTIPROC_DIR must be set before this
module is imported (``cmd_serve`` does it), and ``render_latest`` then merges every process's files."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

requests_total = Counter("cutout_requests_total", "HTTP requests answered, by status", ["status"])
# Bound once: a label lookup per hit is measurable on the hot path.
answered_200 = requests_total.labels("200")
answered_304 = requests_total.labels("304")
answered_206 = requests_total.labels("206")
answered_416 = requests_total.labels("416")
render_seconds = Histogram("cutout_render_seconds", "Time to render one derivative (cache misses)")
renders_stopped_total = Counter(
    "cutout_renders_stopped_total",
    "Renders stopped before their end: reason time_budget (CUTOUT_RENDER_TIMEOUT) or client_gone",
    ["reason"],
)
renders_shared_total = Counter(
    "cutout_renders_shared_total",
    "Requests answered by a render another request for the same URL had started in this process",
)
inference_total = Counter("cutout_inference_total", "Segmentation model runs (mask cache misses)")
inference_seconds = Histogram(
    "cutout_inference_seconds", "Time of one segmentation model run",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
cache_hits_total = Counter("cutout_cache_hits_total", "Derivatives served from the cache")
shared_cache_hits_total = Counter(
    "cutout_shared_cache_hits_total", "Derivatives and masks found in the shared (second-tier) store"
)
jobs_queued_total = Counter("cutout_jobs_queued_total", "Background-removal jobs queued for workers")
cache_misses_total = Counter("cutout_cache_misses_total", "Derivatives not in the cache")
# The HTTP API (/v1/...). Routes are labelled by their template ("POST /v1/remove-background"), never by
# the path itself (task ids would make a series per task).
api_requests_total = Counter(
    "cutout_api_requests_total", "HTTP API requests answered, by route and status", ["route", "status"]
)
api_tasks_total = Counter(
    "cutout_api_tasks_total",
    "HTTP API tasks by what happened to them: created, resumed (picked up again after a restart or a "
    "dead worker), success, error",
    ["state"],
)
api_queue_depth = Gauge(
    "cutout_api_queue_depth",
    "HTTP API tasks waiting for or making their result (pending or running)",
    multiprocess_mode="livesum",
)
queue_depth = Gauge(
    "cutout_queue_depth", "Background-removal jobs queued or running", multiprocess_mode="livesum"
)

# The coordinator's count of live generation claims, shared by every process and (with a shared
# coordinator) every replica: read at scrape time, so "mostrecent" rather than a per-process sum.
claims_active = Gauge(
    "cutout_claims_active", "Generations claimed now across all processes (the coordinator's depth)",
    multiprocess_mode="mostrecent",
)
# Whether that count could be read at the last scrape: with Redis away the scrape still answers (it is
# how an outage is seen), and cutout_claims_active then keeps its last value rather than a false 0.
state_reachable = Gauge(
    "cutout_state_reachable",
    "1 if the coordinator's state (Redis with CUTOUT_STATE) answered at the last scrape, else 0 "
    "(cutout_claims_active is then stale)",
    multiprocess_mode="mostrecent",
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def render_latest() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
