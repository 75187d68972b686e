"""Text generation: feed the prime through the model from a zero state, then pick a character,
feed it back as a one-hot input (the state carried), and repeat.

    greedy (temperature 0):  c = argmax_i z_i
    sampling:                p_i = exp(z_i / T) / sum_j exp(z_j / T), over the top_k largest
                             logits z when top_k > 0 (ties broken by index), else over all
"""

from __future__ import annotations

import numpy as np

from rnnlab.plugin import RnnlabError, param_name

from .vocab import Vocabulary


def pick(logits: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator) -> int:
    """The index of the next character."""
    z = logits.astype(np.float64)
    if temperature == 0:
        return int(np.argmax(z))
    if 0 < top_k < z.size:
        keep = np.argsort(-z, kind="stable")[:top_k]
        z = np.where(np.isin(np.arange(z.size), keep), z, -np.inf)
    z = z / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(z.size, p=p / p.sum()))


def generate(
    model,
    vocab: Vocabulary,
    prime: str,
    length: int,
    temperature: float,
    top_k: int,
    rng: np.random.Generator,
) -> str:
    """``length`` characters that continue ``prime`` (the prime itself is not returned)."""
    if not prime:
        raise RnnlabError("the prime must hold at least one character")
    if temperature < 0 or top_k < 0 or length < 0:
        raise RnnlabError("temperature, top_k and length must be >= 0")
    inputs = model.params[param_name("weight_ih", 0)].shape[1]
    if inputs != len(vocab):
        raise RnnlabError(
            f"the model takes {inputs} inputs but the vocabulary holds {len(vocab)} characters"
        )
    eye = np.eye(len(vocab), dtype=model.params[param_name("weight")].dtype)
    out, state = model.outputs(eye[vocab.encode(prime, "prime")][:, None, :], "every")
    chosen = []
    for _ in range(length):
        c = pick(out[-1, 0], temperature, top_k, rng)
        chosen.append(c)
        out, state = model.outputs(eye[[c]][:, None, :], "every", state)
    return vocab.decode(chosen)
