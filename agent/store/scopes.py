"""What an API key may do: a module of its own, light enough for the command line's help."""

from __future__ import annotations

from enum import StrEnum


class KeyScope(StrEnum):
    ADMIN = "admin"  # staff: knowledge base, keys, tickets, every transcript
    BACKEND = "backend"  # the shop's backend: vouches for customers, reads any transcript
    WIDGET = "widget"  # the public web page: its own conversations only
