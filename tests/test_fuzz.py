"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis).

Every operation of `/openapi.json` gets requests sent to a real server (uvicorn on loopback), in
two phases. Coverage: schemathesis's deterministic boundary cases (each bound and one past it,
each required part missing, wrong types, methods the path does not have), each sent as an
admin, a backend and a widget key. Fuzzing: requests Hypothesis generates from the schema, valid
ones and invalid ones, each as one of those keys or with whatever `Authorization` was generated.
Valid requests are also sent naming real records (the caller's own conversation with its token,
a proposed change, a ticket, a customer, a document) so that they get past the 404s. Every
response must be no 5xx, and exactly what the schema says: a declared status code, a declared
content type, the declared headers and a body that matches its schema; a method a path does not
have is a 405 with `Allow`.

Claude is the wire-level fake, answering every turn with its `default` responder, so fuzzing
never reaches the network and never runs out of scripted replies. The run is bounded (a fixed
number of examples per operation) and repeatable: a fixed seed, no example database.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from agent.api.app import create_app
from tests.conftest import IVAN, SettingsFactory, customer_id
from tests.fake_anthropic import FakeAnthropic, text, tool_use
from tests.live_server import serve
from tests.test_api import _runtime

# FUZZ_SEED / FUZZ_EXAMPLES explore further by hand; the suite always runs these.
SEED = int(os.environ.get("FUZZ_SEED", "20261113"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))  # per operation, for each mode
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Generated integers are small; a database's limits are not. Some fuzzed requests put one of
# these in an integer path or query parameter, whatever bounds the schema declares.
HUGE = (2**31, 2**63, 2**64 + 1, 10**30, -(2**63) - 1)
KEYS = ("admin", "backend", "widget")
CALLERS = (*KEYS, None)  # None: the generated Authorization header


def _setup(base: str, keys: dict[str, str], fake: FakeAnthropic, ivan: str) -> dict[str, Any]:
    """Real records for the generated requests to name: each caller's own conversation, a
    proposed change, a ticket, a document."""

    def auth(scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[scope]}"}

    with httpx.Client(base_url=base, timeout=30) as client:
        widget = client.post("/v1/conversations", json={}, headers=auth("widget")).json()
        bound = client.post("/v1/conversations", json={"customer_email": IVAN["email"]},
                            headers=auth("backend")).json()  # fmt: skip
        fake.enqueue(tool_use("cancel_pending_order",
                              {"order_id": "#W8770097", "reason": "ordered by mistake"}))  # fmt: skip
        proposed = client.post(f"/v1/conversations/{bound['id']}/messages",
                               json={"text": "Please cancel #W8770097"}, headers=auth("backend"))  # fmt: skip
        assert proposed.status_code == 200, proposed.text
        handed = client.post("/v1/conversations", json={"customer_email": IVAN["email"]},
                             headers=auth("backend")).json()  # fmt: skip
        fake.enqueue(tool_use("escalate_to_human", {"reason": "fuzz", "summary": "a person"}),
                     text("A colleague will reply here."))  # fmt: skip
        client.post(f"/v1/conversations/{handed['id']}/messages", json={"text": "a person please"},
                    headers=auth("backend"))  # fmt: skip
        (ticket,) = client.get("/v1/tickets", headers=auth("admin")).json()
        upload = client.post("/v1/kb/documents", headers=auth("admin"), files=[
            ("files", ("kettle.md", b"# Kettle\n\n## Descaling\nDescale every 4 weeks.\n", "text/markdown"))])  # fmt: skip
        assert upload.status_code == 201, upload.text
        (document,) = client.get("/v1/kb/documents", headers=auth("admin")).json()
    return {
        "tokens": {"widget": widget["conversation_token"]},
        "conversation_id": {"widget": widget["id"], "backend": bound["id"], "admin": bound["id"]},
        "action_id": proposed.json()["pending_action"]["id"],
        "ticket_id": ticket["id"],
        "customer_id": ivan,
        "doc_id": document["id"],
    }


def _coverage(operation: Any) -> list[Any]:
    """Schemathesis's coverage-phase cases of one operation (deterministic: no seed needed)."""
    generator = CoverageGenerator(
        operation=operation,
        generation_modes=list(MODES),
        generation_config=operation.schema.config.generation_for(
            operation=operation, phase="coverage"
        ),
        auth_storage=None,
        override=Override(),
        feedback=FeedbackSources(),
    )
    return list(generator)


def _integer_parameters(operation: Any) -> list[tuple[str, str]]:
    """(location, name) of the operation's integer path and query parameters."""
    return [
        (p["in"], p["name"])
        for p in operation.definition.raw.get("parameters", [])
        if p["in"] in ("path", "query") and p.get("schema", {}).get("type") == "integer"
    ]


def _fuzz(
    operation: Any, mode: GenerationMode, call: Callable[[Any, str | None, bool], None]
) -> None:
    integers = _integer_parameters(operation)

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        database=None,  # no examples carried over from earlier runs: every run is the same
        deadline=None,  # a turn's latency is not what this measures
        derandomize=False,  # the fixed seed above decides
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=operation.as_strategy(generation_mode=mode), caller=st.sampled_from(CALLERS),
           real=st.booleans(), huge=st.sampled_from((None, None, *HUGE)), data=st.data())  # fmt: skip
    def run(case: Any, caller: str | None, real: bool, huge: int | None, data: Any) -> None:
        if huge is not None and integers:
            where, name = data.draw(st.sampled_from(integers))
            (case.path_parameters if where == "path" else case.query)[name] = huge
            real = real and where != "path"  # keep the out-of-range id
        call(case, caller, real)

    run()


@pytest.mark.slow
def test_the_api_never_answers_5xx_or_outside_its_schema(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime, keys = _runtime(make_settings, rate_limit_per_key=10**9, rate_limit_per_widget_key=10**9,
                             rate_limit_per_client=10**9, rate_limit_per_conversation=10**9,
                             event_stream_seconds=0.2, event_poll_seconds=0.05)  # fmt: skip
    fake.default = lambda body: text("Thanks, noted.")
    ivan = customer_id(runtime, IVAN["email"])
    started = time.monotonic()
    with serve(create_app(runtime.settings, runtime)) as base:
        real = _setup(base, keys, fake, ivan)
        schema = schemathesis.openapi.from_dict(httpx.get(f"{base}/openapi.json").json())

        def call(case: Any, caller: str | None, use_real: bool, checks: list = CHECKS) -> None:
            if caller is not None:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {keys[caller]}"}
                if caller in real["tokens"]:
                    case.headers["X-Conversation-Token"] = real["tokens"][caller]
            if use_real and case.path_parameters:
                for name in case.path_parameters:
                    value = real.get(name)
                    if isinstance(value, dict):
                        value = value.get(caller or "backend")
                    if value is not None:
                        case.path_parameters[name] = value
            response = case.call_and_validate(base_url=base, checks=checks, timeout=60)
            statuses[case.operation.label][response.status_code] += 1

        statuses: dict[str, Counter[int]] = defaultdict(Counter)
        failures: list[str] = []
        nothing_to_negate: list[str] = []
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 19
        for operation in operations:
            for caller in KEYS:
                for use_real in (False, True):
                    for case in _coverage(operation):  # afresh: a call changes its case
                        if use_real and case.meta.generation.mode != GenerationMode.POSITIVE:
                            continue
                        try:
                            call(case, caller, use_real, [*CHECKS, unsupported_method])
                        except (Exception, FailureGroup) as exc:
                            failures.append(f"{operation.label} (coverage, {caller}):\n{exc}")
            for mode in MODES:
                try:
                    _fuzz(operation, mode, call)
                except Unsatisfiable:
                    # Only in negative mode, for an operation whose every input is optional
                    # and unconstrained (GET /healthz): there is no invalid request to make.
                    assert mode == GenerationMode.NEGATIVE, operation.label
                    nothing_to_negate.append(operation.label)
                except (
                    Exception,
                    FailureGroup,
                ) as exc:  # every operation's failures, not the first only
                    failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    elapsed = time.monotonic() - started
    print(f"\nfuzzed {len(operations)} operations x {len(MODES)} modes in {elapsed:.0f} s "
          f"(seed {SEED}, {EXAMPLES} examples each; no invalid input exists for "
          f"{', '.join(nothing_to_negate)})")  # fmt: skip
    for label, seen in statuses.items():
        print(f"  {label}: {dict(sorted(seen.items()))}")
    shown = "\n\n".join(f[:2000] for f in failures[:20])
    assert not failures, f"{len(failures)} failures; the first ones:\n\n{shown}"
