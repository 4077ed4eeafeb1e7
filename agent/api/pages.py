"""The HTML pages (agent/web/): the company's name filled in, and the staff sign-in fields
that the desk and the report share."""

from __future__ import annotations

from pathlib import Path

from agent.config import Settings

WEB = Path(__file__).resolve().parents[1] / "web"


def page(name: str, settings: Settings, **values: str) -> str:
    """agent/web/<name> with __COMPANY__, __SIGN_IN__ and each __KEY__ of `values` filled in."""
    text = (WEB / name).read_text()
    if "__SIGN_IN__" in text:
        text = text.replace("__SIGN_IN__\n", (WEB / "sign_in.html").read_text().split("\n", 1)[1])
    for key, value in {"COMPANY": settings.company_name, **values}.items():
        text = text.replace(f"__{key}__", value)
    return text
