"""Monitoring: Prometheus metrics (metrics.py), OpenTelemetry traces (agent/tracing.py), what
watches each turn (turns.py), logs (logs.py) and the HTTP side of all three (http.py)."""
