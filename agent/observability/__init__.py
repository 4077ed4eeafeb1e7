"""Monitoring: Prometheus metrics (metrics.py), OpenTelemetry traces (tracing.py), what
watches each turn (turns.py), logs (logs.py) and the HTTP side of all three (http.py)."""
