"""The ASGI entry point for uvicorn workers: `agent.api.main:app`."""

from agent.api.app import create_app

app = create_app(settle=True)  # a server's own process: its heap is frozen after start-up
