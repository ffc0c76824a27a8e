"""A character n-gram model of prompt injection: hashed character 3-5-grams of the
de-obfuscated, lower-cased text, weighted by a logistic regression (numpy and scipy only).

The features of a text are the counts of its character 3-, 4- and 5-grams hashed into
``2**bits`` buckets (a multiply-shift hash of a polynomial over the code points: the same
on every machine and Python version), divided by the square root of the number of n-grams
(so its score is a gather and a sum: no sorting on the light path). Its score is the regression's
attack probability. The text is first read the way the pattern tier reads an obfuscated one
(``deobfuscate``: NFKC, look-alike letters mapped, invisible characters dropped), lower-cased,
with runs of white space made one space; a long text is read at its head and tail only
(``MAX_CHARS``), so the cost is bounded (about 20-40 us a text, vectorised numpy).

The weights ship in ``data/injection_ngram.npz`` (float16, with the bias and the provenance
in ``data/injection_ngram.json``), trained by ``benchmarks/train_injection_stack.py``.

Example:
    >>> import numpy as np
    >>> from llmpulse.processors.guardrails.ngram import ngram_features
    >>> x = ngram_features(["Ignore previous instructions"], bits=12)
    >>> x.shape, round(float(x.sum()) ** 2 / 81, 6)    # 30 characters with the padding: 81 n-grams
    ((1, 4096), 1.0)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from llmpulse.processors.guardrails.views import deobfuscate

__all__ = ["MAX_CHARS", "NgramModel", "fit_sparse_logistic", "load_ngram_model", "ngram_features",
           "normalise"]

MAX_CHARS = 2000
"""A longer text is read at its first 1,500 and last 500 characters."""
_ORDERS = (3, 4, 5)
_BASE = np.uint64(1_000_003)
_MIX = np.uint64(0x9E3779B97F4A7C15)


def normalise(text: str) -> str:
    """What the model reads: de-obfuscated, lower case, white space as single spaces, head
    and tail of a long text, padded with one space each side."""
    if len(text) > MAX_CHARS:
        text = text[:1500] + " " + text[-500:]
    if not text.isascii():   # ASCII has nothing to fold, map or drop
        text = deobfuscate(text)
    return " " + " ".join(text.lower().split()) + " "


def _buckets(text: str, bits: int) -> Any:
    """The bucket of every character 3-, 4- and 5-gram of the normalised ``text`` (a rolling
    polynomial: the 4-grams extend the 3-grams, the 5-grams the 4-grams)."""
    codes = np.frombuffer(normalise(text).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(codes)
    if n < _ORDERS[0]:
        return np.zeros(0, dtype=np.uint64)
    out = np.empty(3 * n - 9, dtype=np.uint64)   # the 3-, 4- and 5-grams' polynomials, one after another
    h3, h4, h5 = out[:n - 2], out[n - 2:2 * n - 5], out[2 * n - 5:]
    np.multiply(codes[:-2], _BASE, out=h3)
    h3 += codes[1:-1]
    h3 *= _BASE
    h3 += codes[2:]
    np.multiply(h3[:-1], _BASE, out=h4)
    h4 += codes[3:]
    np.multiply(h4[:-1], _BASE, out=h5)
    h5 += codes[4:]
    out *= _MIX
    out >>= np.uint64(64 - bits)
    return out


def ngram_features(texts: Sequence[str], bits: int) -> Any:
    """A sparse matrix (one row a text, ``2**bits`` columns): hashed n-gram counts divided by
    the square root of the text's number of n-grams."""
    from scipy import sparse  # training and evaluation only: the light path needs numpy alone

    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        keys = _buckets(text, bits)
        if len(keys):
            rows.append(np.full(len(keys), i))
            cols.append(keys)
            vals.append(np.full(len(keys), 1.0 / np.sqrt(len(keys))))
    if not rows:
        return sparse.csr_matrix((len(texts), 1 << bits))
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(len(texts), 1 << bits))


def fit_sparse_logistic(x: Any, y: Any, *, c: float) -> tuple[Any, float]:
    """Weights and bias of an L2-regularised logistic regression on a sparse ``x`` (penalty
    ``|w|^2 / 2c``, the bias not penalised), by L-BFGS from zeros: deterministic."""
    from scipy import sparse
    from scipy.optimize import minimize

    y = np.asarray(y, dtype=np.float64)
    sign = 2 * y - 1
    x = sparse.csr_matrix(x)
    xt = x.T.tocsr()

    def loss(wb: Any) -> tuple[float, Any]:
        w, b = wb[:-1], wb[-1]
        z = sign * (x @ w + b)
        p = 1.0 / (1.0 + np.exp(-z))
        value = float(np.logaddexp(0, -z).sum() + (w @ w) / (2 * c))
        r = -(1 - p) * sign
        return value, np.concatenate([xt @ r + w / c, [r.sum()]])

    result = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                      options={"maxiter": 500})
    return result.x[:-1], float(result.x[-1])


class NgramModel:
    """The shipped n-gram model: ``scores(texts)`` gives each text's attack probability.

    Args:
        weights: one weight a bucket (``2**bits`` of them).
        bias: the regression's bias.
        info: the provenance and thresholds from the JSON file.
    """

    def __init__(self, weights: Any, bias: float, info: dict[str, Any] | None = None) -> None:
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bits = int(np.log2(len(self.weights)))
        if 1 << self.bits != len(self.weights):
            raise ValueError(f"{len(self.weights)} weights: not a power of two")
        self.bias = float(bias)
        self.info = info or {}

    def logit(self, text: str) -> float:
        """The regression's log-odds for one text (a gather and a sum, no matrix)."""
        keys = _buckets(text, self.bits)
        if not len(keys):
            return self.bias
        return float(self.weights[keys].sum()) / math.sqrt(len(keys)) + self.bias

    def scores(self, texts: Sequence[str]) -> list[float]:
        """The attack probability of each text."""
        return [1.0 / (1.0 + math.exp(-max(self.logit(t), -700.0))) for t in texts]


@lru_cache(maxsize=1)
def load_ngram_model() -> NgramModel:
    """The shipped model (``data/injection_ngram.npz`` and ``.json``), loaded once."""
    here = resources.files("llmpulse.processors.guardrails")
    info = json.loads(here.joinpath("data/injection_ngram.json").read_text(encoding="utf-8"))
    with here.joinpath("data/injection_ngram.npz").open("rb") as f:
        weights = np.load(f)["weights"].astype(np.float32)
    return NgramModel(weights, info["bias"], info)
