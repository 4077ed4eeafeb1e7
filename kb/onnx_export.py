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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m kb.onnx_export MODEL_DIR OUT_FILE", file=sys.stderr)
        return 2
    print(json.dumps(export(Path(args[0]), Path(args[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
