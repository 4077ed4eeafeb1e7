"""Triage through the Message Batches API, at any number of tickets.

Tickets are read as a stream and grounded in chunks; each request is written straight to the
body of the batch being built (a file), so memory does not grow with the number of tickets.
A batch closes at `max_requests` requests or `max_bytes` of JSON (the API's limits: 100,000
requests, 256 MB) and is sent as it stands on disk.

Resume: a state file beside the output (`results.batch.json`) records the input's SHA-256 and
the model, and per batch its id, its tickets (custom ids `t000000`, numbered across the whole
input, so unique across batches) and whether its results are written. Re-running with the
same input and model skips batches already written, polls batches already submitted, and
builds and submits only the tickets no batch holds yet: no ticket is paid for twice. Results
go to `results.batches/NNNN.results.jsonl` in input order, and the output is assembled from
them, so an offline fallback in between never spoils a later resume.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

import anthropic
from anthropic.types.messages import MessageBatch
from pydantic import BaseModel

from agent.errors import SupportbotError
from agent.features.triage import (
    CHUNK_TICKETS,
    Problems,
    Ticket,
    TriageOutput,
    TriageRequests,
    TriageResult,
    fingerprint,
    grounded,
    iter_tickets,
    parse_output,
    result_from_output,
    source_refs,
)
from kb import KnowledgeBase

MAX_REQUESTS = 100_000  # the API's limits per batch
MAX_BYTES = 256_000_000
_HEAD, _SEP, _TAIL = b'{"requests":[\n', b",\n", b"\n]}"
USAGE_KINDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)

Progress = Callable[[int, int], None]  # (tickets finished, tickets known so far)
Notify = Callable[[str], None]


class BatchesUnavailable(SupportbotError):
    """The Message Batches API cannot be reached or refuses us (the reason is the message)."""

    code = "batches_unavailable"


def _custom_id(index: int) -> str:
    return f"t{index:06d}"  # ticket ids may hold characters custom_id does not allow


# -- preparing batches on disk -----------------------------------------------------------------


@dataclass
class Prepared:
    number: int
    first: int  # index of its first ticket in the input's valid tickets
    count: int = 0
    size: int = len(_HEAD) + len(_TAIL)


class _BatchFiles:
    """The request body being built (`NNNN.body.json`) and its tickets' ids and passages
    (`NNNN.tickets.jsonl`), both written as requests are added."""

    def __init__(self, folder: Path, batch: Prepared) -> None:
        self.batch = batch
        self.body = body_path(folder, batch.number).open("wb")
        self.tickets = tickets_path(folder, batch.number).open("w", encoding="utf-8")
        self.body.write(_HEAD)

    def fits(self, data: bytes, max_requests: int, max_bytes: int) -> bool:
        b = self.batch
        return b.count == 0 or (
            b.count < max_requests and b.size + len(_SEP) + len(data) <= max_bytes
        )

    def add(self, data: bytes, ticket_line: str) -> None:
        if self.batch.count:
            self.body.write(_SEP)
            self.batch.size += len(_SEP)
        self.body.write(data)
        self.tickets.write(ticket_line)
        self.batch.count += 1
        self.batch.size += len(data)

    def close(self) -> Prepared:
        self.body.write(_TAIL)
        self.body.close()
        self.tickets.close()
        return self.batch


def prepare_batches(
    pairs: Iterable[tuple[Ticket, list[Any]]],
    requests: TriageRequests,
    folder: Path,
    *,
    first_index: int = 0,
    first_number: int = 0,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
) -> Iterator[Prepared]:
    """Batch bodies within the limits, written to `folder`, each yielded once complete."""
    folder.mkdir(parents=True, exist_ok=True)
    current: _BatchFiles | None = None
    index, number = first_index, first_number
    for ticket, hits in pairs:
        cid = _custom_id(index)
        request = {"custom_id": cid, "params": requests.params(ticket, hits)}
        data = json.dumps(request, ensure_ascii=False).encode()
        if current is not None and not current.fits(data, max_requests, max_bytes):
            yield current.close()
            number += 1
            current = None
        if current is None:
            current = _BatchFiles(folder, Prepared(number, index))
        line = {"custom_id": cid, "ticket_id": ticket.id, "sources": source_refs(hits)}
        current.add(data, json.dumps(line, ensure_ascii=False) + "\n")
        index += 1
    if current is not None:
        yield current.close()


def body_path(folder: Path, number: int) -> Path:
    return folder / f"{number:04d}.body.json"


def tickets_path(folder: Path, number: int) -> Path:
    return folder / f"{number:04d}.tickets.jsonl"


def results_path(folder: Path, number: int) -> Path:
    return folder / f"{number:04d}.results.jsonl"


# -- state -------------------------------------------------------------------------------------


class BatchEntry(BaseModel):
    number: int
    first: int
    count: int
    id: str
    written: bool = False
    usage: dict[str, int] = {}


class RunState(BaseModel):
    version: int = 2
    input_sha256: str
    model: str
    batches: list[BatchEntry] = []

    @classmethod
    def load(cls, path: Path, input_sha256: str, model: str) -> RunState | None:
        """The stored run of this input and model, or None."""
        try:
            state = cls.model_validate_json(path.read_text())
        except (OSError, ValueError):
            return None
        return state if (state.input_sha256, state.model) == (input_sha256, model) else None

    def save(self, path: Path) -> None:
        partial = path.with_name(path.name + ".partial")
        partial.write_text(self.model_dump_json(indent=1))
        partial.replace(path)


@dataclass
class RunReport:
    created: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    tickets: int = 0
    usage: dict[str, int] = field(default_factory=dict)


# -- the API -----------------------------------------------------------------------------------


class _FileBody:
    """A request body streamed from a file; iterable again for the SDK's retries."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[bytes]:
        with self.path.open("rb") as f:
            while block := f.read(1 << 16):
                yield block


def submit(client: Any, path: Path) -> str:
    """Create a batch from the body on disk, without loading it into memory."""
    batch = client.post(
        "/v1/messages/batches",
        cast_to=MessageBatch,
        content=_FileBody(path),
        options={"headers": {"Content-Type": "application/json",
                             "Content-Length": str(path.stat().st_size)}},
    )  # fmt: skip
    return str(batch.id)


def wait(client: Any, batch_id: str, poll_seconds: float, tick: Callable[[int], None]) -> None:
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        counts = batch.request_counts
        tick(
            counts.succeeded + counts.errored + counts.canceled + counts.expired
        )  # finished so far
        if batch.processing_status == "ended":
            return
        time.sleep(poll_seconds)


def collect(client: Any, folder: Path, entry: BatchEntry) -> dict[str, int]:
    """Write the batch's results in input order; the batch's usage."""
    usage = dict.fromkeys(USAGE_KINDS, 0)
    raw_path = folder / f"{entry.number:04d}.raw.jsonl"
    offsets: dict[str, int] = {}  # custom id -> where its result starts in the raw file
    with raw_path.open("w+b") as raw:
        for line in client.messages.batches.results(entry.id):
            result = line.result
            record: dict[str, Any]
            if result.type == "succeeded":
                message = result.message
                for kind in USAGE_KINDS:
                    usage[kind] += int(getattr(message.usage, kind, 0) or 0)
                output = parse_output(message.content, message.stop_reason)
                record = {"output": output if isinstance(output, str) else output.model_dump()}
            elif result.type == "errored":
                error = result.error.error
                record = {"error": f"{error.type}: {error.message}"}
            else:
                record = {"status": result.type}
            offsets[line.custom_id] = raw.tell()
            raw.write(json.dumps(record).encode() + b"\n")
        _write_in_order(raw, offsets, folder, entry)
    raw_path.unlink()
    return usage


def _write_in_order(
    raw: IO[bytes], offsets: dict[str, int], folder: Path, entry: BatchEntry
) -> None:
    out = results_path(folder, entry.number)
    partial = out.with_name(out.name + ".partial")
    with (
        tickets_path(folder, entry.number).open(encoding="utf-8") as tickets,
        partial.open("w", encoding="utf-8") as f,
    ):
        for text in tickets:
            ticket = json.loads(text)
            ticket_id, at = ticket["ticket_id"], offsets.get(ticket["custom_id"])
            if at is None:
                result = TriageResult(ticket_id=ticket_id, status="errored", error="no result")
            else:
                raw.seek(at)
                record = json.loads(raw.readline())
                if "output" in record:
                    output = record["output"]
                    parsed = output if isinstance(output, str) else TriageOutput(**output)
                    result = result_from_output(ticket_id, parsed, ticket["sources"])
                elif "error" in record:
                    result = TriageResult(ticket_id=ticket_id, status="errored",
                                          error=record["error"])  # fmt: skip
                else:
                    result = TriageResult(ticket_id=ticket_id, status=record["status"])
            f.write(result.model_dump_json() + "\n")
    partial.replace(out)


def _unavailable(exc: Exception) -> BatchesUnavailable:
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        kind = str(error.get("type", "error")) if isinstance(error, dict) else "error"
        reason = f"{exc.status_code} {kind}"
        if exc.status_code == 400 and isinstance(error, dict) and error.get("message"):
            reason += f": {error['message']}"
        return BatchesUnavailable(reason)
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    detail = str(cause) if cause is not exc else str(exc)
    return BatchesUnavailable(f"unreachable: {detail}")


# -- the run -----------------------------------------------------------------------------------


def run_batches(
    client: Any,
    requests: TriageRequests,
    kb: KnowledgeBase | None,
    path: Path,
    out: Path,
    *,
    problems: Problems,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
    chunk_size: int = CHUNK_TICKETS,
    poll_seconds: float = 10.0,
    progress: Progress | None = None,
    notify: Notify | None = None,
) -> RunReport:
    """Triage the tickets of `path` into `out` (JSON Lines, input order), resuming the stored
    run of the same input. Raises BatchesUnavailable when the API fails us."""
    try:
        return _run(client, requests, kb, path, out, problems, max_requests, max_bytes,
                    chunk_size, poll_seconds, progress or (lambda d, t: None),
                    notify or (lambda m: None))  # fmt: skip
    except (anthropic.APIConnectionError, anthropic.APIStatusError) as exc:
        raise _unavailable(exc) from exc


def state_path(out: Path) -> Path:
    return out.with_suffix(".batch.json")


def batches_folder(out: Path) -> Path:
    return out.with_suffix(".batches")


def _run(
    client: Any,
    requests: TriageRequests,
    kb: KnowledgeBase | None,
    path: Path,
    out: Path,
    problems: Problems,
    max_requests: int,
    max_bytes: int,
    chunk_size: int,
    poll_seconds: float,
    progress: Progress,
    notify: Notify,
) -> RunReport:
    model = str(requests.shared["model"])
    digest = fingerprint(path)
    folder, state_file = batches_folder(out), state_path(out)
    state = RunState.load(state_file, digest, model)
    if state is None:  # a new input (or model): start afresh
        shutil.rmtree(folder, ignore_errors=True)
        state = RunState(input_sha256=digest, model=model)
        state.save(state_file)
    report = RunReport()
    for entry in state.batches:
        entry.written = entry.written and results_path(folder, entry.number).exists()
        report.resumed.append(entry.id)
        done = ", results already written" if entry.written else ""
        notify(f"batch {entry.id}: {_span(entry.first, entry.count)} (resumed{done})")
    held = sum(b.count for b in state.batches)  # tickets some batch holds already
    finished = sum(b.count for b in state.batches if b.written)
    tickets = iter_tickets(path, problems)
    skipped = sum(1 for _ in islice(tickets, held))  # read, not grounded: no new batch needs them
    if skipped < held:
        raise SupportbotError(f"{path} holds fewer tickets than the stored run of it")
    pairs = grounded(kb, tickets, chunk_size=chunk_size)
    total = held
    for prepared in prepare_batches(pairs, requests, folder, first_index=held,
                                    first_number=len(state.batches),
                                    max_requests=max_requests, max_bytes=max_bytes):  # fmt: skip
        batch_id = submit(client, body_path(folder, prepared.number))
        body_path(folder, prepared.number).unlink()
        state.batches.append(BatchEntry(number=prepared.number, first=prepared.first,
                                        count=prepared.count, id=batch_id))  # fmt: skip
        state.save(state_file)
        report.created.append(batch_id)
        total += prepared.count
        progress(finished, total)
        notify(f"batch {batch_id}: {_span(prepared.first, prepared.count)} "
               f"(created, {_megabytes(prepared.size)})")  # fmt: skip
    report.tickets = total
    for entry in state.batches:
        if not entry.written:
            base = finished
            wait(client, entry.id, poll_seconds, lambda done: progress(base + done, total))  # noqa: B023
            entry.usage = collect(client, folder, entry)
            entry.written = True
            state.save(state_file)
            finished += entry.count
            progress(finished, total)
    for entry in state.batches:
        for kind, tokens in entry.usage.items():
            report.usage[kind] = report.usage.get(kind, 0) + tokens
    _assemble(out, folder, state.batches)
    return report


def _span(first: int, count: int) -> str:
    return f"ticket {first + 1}" if count == 1 else f"tickets {first + 1}–{first + count}"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def _assemble(out: Path, folder: Path, batches: list[BatchEntry]) -> None:
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as f:
        for entry in batches:
            with results_path(folder, entry.number).open("rb") as part:
                shutil.copyfileobj(part, f)
    os.replace(partial, out)
