"""One-time export of the packaged all-MiniLM-L6-v2 weights to a fused ONNX Runtime model.

Needs PyTorch, transformers and `onnx`, so it runs in a process of its own
(`python -m kb.onnx_export MODEL_DIR OUT_FILE`, started by `kb.embedder` or by
`supportbot kb export-encoder`): the process that serves queries then loads the ONNX file with
onnxruntime alone and never imports torch. Everything comes from the package's folder on disk;
nothing is downloaded.

Steps: the BERT encoder is traced with eager attention (the classic MatMul/Softmax pattern that
onnxruntime's transformer optimizer recognises), then `optimize_model(model_type="bert")` fuses
the embeddings, attention, skip layer norms and GELU into onnxruntime's contrib operators. The
result is checked against PyTorch's output on sample texts before it is written.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"
SAMPLES = [
    "How do I return a kettle I bought two weeks ago?",
    "Shipping > Late or lost parcels: if your parcel has not arrived within 10 working days, "
    "contact us and we will trace it with the courier.",
    "warranty",
]


def export(model_dir: Path, out_file: Path) -> dict[str, Any]:
    """Write the fused model to `out_file` (atomically) and return what was fused."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import numpy as np
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel, AutoTokenizer

    config = json.loads((model_dir / "config.json").read_text())
    model = AutoModel.from_pretrained(
        str(model_dir), attn_implementation="eager", local_files_only=True
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    batch = tokenizer(SAMPLES, padding=True, return_tensors="pt")

    class Encoder(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    out_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_file.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        with torch.no_grad():
            expected = model(**batch).last_hidden_state.numpy()
            torch.onnx.export(
                Encoder(model),
                tuple(batch[name] for name in INPUTS),
                str(raw),
                dynamo=False,
                input_names=list(INPUTS),
                output_names=[OUTPUT],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*INPUTS, OUTPUT)},
                opset_version=17,
            )
        optimized = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config["num_attention_heads"]),
            hidden_size=int(config["hidden_size"]),
        )
        fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
        layers = int(config["num_hidden_layers"])
        if fused.get("Attention", 0) != layers:
            raise RuntimeError(f"attention was not fused in every layer: {fused}")
        staged = Path(tmp) / "model.onnx"
        optimized.save_model_to_file(str(staged))

        import onnxruntime as ort

        session = ort.InferenceSession(str(staged), providers=["CPUExecutionProvider"])
        got = session.run(None, {name: batch[name].numpy() for name in INPUTS})[0]
        mask = batch["attention_mask"].numpy().astype(bool)
        worst = float(np.abs(got[mask] - expected[mask]).max())
        if worst > 1e-3:
            raise RuntimeError(f"the fused model disagrees with PyTorch by {worst}")
        os.replace(staged, out_file)
    return {"fused": fused, "max_abs_difference": worst}


def _pooled(session: Any, model_dir: Path, texts: list[str]) -> Any:
    """Mean-pooled, unit-length embeddings of `texts` from an exported model."""
    import numpy as np
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(256)
    rows = []
    for text in texts:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        hidden = session.run(None, {**feed, "token_type_ids": np.zeros_like(ids)})[0]
        mean = hidden[0].mean(axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.vstack(rows)


def quantize(model_dir: Path, fp32_file: Path, out_file: Path) -> dict[str, Any]:
    """An int8 copy of an export: the feed-forward MatMuls' weights quantised per channel
    (dynamic quantisation: activations are quantised as they come), attention left in fp32.
    Checked against the fp32 model's embeddings before it is written."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_file.parent) as tmp:
        staged = Path(tmp) / "model.onnx"
        quantize_dynamic(
            str(fp32_file),
            str(staged),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            extra_options={"DefaultTensorType": 1},  # onnx.TensorProto.FLOAT: fused ops' outputs
        )
        vectors = [
            _pooled(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]),
                    model_dir, SAMPLES)
            for path in (fp32_file, staged)
        ]  # fmt: skip
        worst = float((vectors[0] * vectors[1]).sum(axis=1).min())
        if worst < 0.99:
            raise RuntimeError(f"the int8 model's embeddings drift: cosine {worst:.4f} < 0.99")
        os.replace(staged, out_file)
    return {"quantized": "MatMul weights, per channel, int8", "min_cosine_to_fp32": worst}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 4 and args[0] == "--int8":
        print(json.dumps(quantize(Path(args[1]), Path(args[2]), Path(args[3]))))
        return 0
    if len(args) != 2:
        print(
            "usage: python -m kb.onnx_export MODEL_DIR OUT_FILE\n"
            "       python -m kb.onnx_export --int8 MODEL_DIR FP32_FILE OUT_FILE",
            file=sys.stderr,
        )
        return 2
    print(json.dumps(export(Path(args[0]), Path(args[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
