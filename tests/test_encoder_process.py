"""The query encoder in a process of its own (kb.encoder_process), as `supportbot serve` runs
it for its workers: the same vectors and token counts as the model in the worker, and a worker
that loads the model itself when the process is gone."""

from __future__ import annotations

import numpy as np

from kb import embedder as embedder_module
from kb.embedder import Embedder, OnnxEncoder
from kb.encoder_process import RemoteEncoder, start, stop

TEXTS = ["how do I descale my kettle", "can I return something after 30 days", "x" * 40]


def test_the_encoder_process_encodes_as_the_worker_would() -> None:
    process, address = start(backend="onnx", threads=1, cache_dir=None, data_dir=None)
    try:
        remote, here = Embedder(backend="onnx", address=address), Embedder(backend="onnx")
        assert isinstance(remote.model, RemoteEncoder)
        np.testing.assert_allclose(remote.encode(TEXTS), here.encode(TEXTS), atol=1e-6)
        assert remote.count_tokens(TEXTS[1]) == here.count_tokens(TEXTS[1])
        assert remote.encode_queries(TEXTS[:1]).shape == (1, 384)
        # Gone (its server stopped or it died): the worker loads the model and goes on.
        process.kill()
        process.wait()
        again = Embedder(backend="onnx", address=address).encode(TEXTS)
        np.testing.assert_allclose(again, here.encode(TEXTS), atol=1e-6)
        assert isinstance(remote.model, RemoteEncoder)
        assert isinstance(remote.model._local, OnnxEncoder)
    finally:
        stop(process, address)
        embedder_module._remote.pop(address, None)


def test_the_torch_encoder_stays_in_the_worker() -> None:
    assert Embedder(backend="torch", address="/nowhere").address is None
