"""Live Prometheus metrics of a batch run (``robocall batch --metrics-port``), optional.

A carrier's operations team scrapes the driver while a night's run goes: calls finished by
status, robots, the seconds spent per call, and the worker's peak memory. Served by
``prometheus_client`` on 127.0.0.1 only (put a reverse proxy or an SSH tunnel in front to reach it
from elsewhere); the summary at the end of the run is JSON on stdout either way.
"""

from __future__ import annotations

from typing import Any


class RunMetrics:
    """Counters and histograms of one run, on their own registry (tests can run several).

    Parameters
    ----------
    port : int, optional
        Serve ``/metrics`` on ``127.0.0.1:port`` (0 picks a free port, see :attr:`port`); None
        keeps the metrics in memory only.

    Raises
    ------
    ModuleNotFoundError
        ``prometheus-client`` is not installed (``pip install -e '.[metrics]'``).
    OSError
        The port is taken.
    """

    def __init__(self, *, port: int | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.calls = Counter(
            "robocall_batch_calls", "Calls finished by this run, by status and error code",
            ["status", "error_code"], registry=self.registry,
        )  # fmt: skip
        self.robots = Counter(
            "robocall_batch_robot_calls", "Calls whose caller is decided a robot",
            registry=self.registry,
        )  # fmt: skip
        self.uncertain = Counter(
            "robocall_batch_uncertain_calls",
            "Calls left undecided (robot probability in the uncertain band)",
            registry=self.registry,
        )  # fmt: skip
        self.seconds = Histogram(
            "robocall_batch_call_seconds", "Wall seconds a worker spent on one call",
            buckets=(0.5, 1, 2, 5, 10, 20, 60, 120), registry=self.registry,
        )  # fmt: skip
        self.worker_rss = Gauge(
            "robocall_batch_worker_peak_rss_mb", "Peak resident memory of the last worker, MB",
            registry=self.registry,
        )  # fmt: skip
        self.port: int | None = None
        self._server: Any = None
        if port is not None:
            from prometheus_client import start_http_server

            self._server, thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)
            self.port = int(self._server.server_port)
            del thread

    def observe(self, row: dict[str, Any]) -> None:
        """Count one finished row (as the worker made it)."""
        self.calls.labels(status=row["status"], error_code=row.get("error_code") or "").inc()
        # the decided caller, not the label: an uncertain row is labelled human_sales_pitch
        if row.get("caller_certainty") == "robot":
            self.robots.inc()
        elif row.get("caller_certainty") == "uncertain":
            self.uncertain.inc()
        if row.get("elapsed_s") is not None:
            self.seconds.observe(row["elapsed_s"])
        if row.get("worker_peak_rss_mb") is not None:
            self.worker_rss.set(row["worker_peak_rss_mb"])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
