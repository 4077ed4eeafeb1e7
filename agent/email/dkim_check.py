"""DKIM-aligned trust (SUPPORTBOT_EMAIL_TRUST_DKIM): whether a message carries a valid DKIM
signature of its From address's domain (dkimpy; the signing domain d= equal to the From domain
or a parent of it, as DMARC's relaxed alignment has it)."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

DnsLookup = Callable[..., bytes | None]  # dkimpy's dnsfunc(name, timeout=) -> TXT record


def aligned(signing_domain: str, from_domain: str) -> bool:
    d, f = signing_domain.lower().strip("."), from_domain.lower().strip(".")
    # A one-label d= (a public suffix, "com") never aligns.
    return bool(d) and "." in d and (f == d or f.endswith("." + d))


def aligned_dkim_domain(raw: bytes, sender: str, dns: DnsLookup | None = None) -> str | None:
    """The signing domain of a valid DKIM signature aligned with `sender`'s domain, or None.
    Any error (no signature, a bad one, DNS unreachable, a key too short) is None: the
    message is then simply not trusted."""
    import dkim

    from_domain = sender.rpartition("@")[2]
    if not from_domain:
        return None
    try:
        verifier = dkim.DKIM(raw, minkey=1024)
        count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    except Exception:
        return None
    for index in range(count):
        try:
            ok = verifier.verify(idx=index, dnsfunc=dns) if dns else verifier.verify(idx=index)
        except Exception as exc:
            log.info("DKIM signature %d did not verify: %s", index, exc)
            continue
        domain = (verifier.domain or b"").decode("ascii", "replace")
        if ok and aligned(domain, from_domain):
            return domain.lower()
    return None
