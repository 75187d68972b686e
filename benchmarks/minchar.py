"""The baseline of the char-model bar: a training loop in the style of Karpathy's min-char-rnn
(NumPy, one character at a time, column vectors), written here from its equations.

A tanh RNN with separate input, recurrent and output weights, one-hot inputs, softmax
cross-entropy summed over a chunk, truncated BPTT over chunks of ``seq_length`` characters with
the hidden state carried from one chunk to the next, every gradient clipped to [-5, 5], and an
Adagrad step per chunk:

    h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)       x_t = onehot(c_t)
    y_t = W_hy h_t + b_y,   p_t = softmax(y_t),     loss = -sum_t log p_t[c_{t+1}]
    m  += g * g,            theta -= lr * g / sqrt(m + 1e-8)

Only the training loop (no sampling, no smoothed loss print). :meth:`MinCharRnn.epoch` walks
the stream in consecutive chunks from its first character, the last chunk possibly shorter, the
same chunks rnnlab's stateful epoch takes (min-char-rnn itself drops the tail shorter than a
chunk and starts over), so both see the same characters.
"""

from __future__ import annotations

import numpy as np

PARAMS = ("Wxh", "Whh", "Why", "bh", "by")


class MinCharRnn:
    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 100,
        learning_rate: float = 0.1,
        clip: float = 5.0,
        seed: int = 0,
    ):
        rng = np.random.default_rng(seed)
        V, H = vocab_size, hidden_size
        self.V, self.H, self.lr, self.clip = V, H, learning_rate, clip
        self.Wxh = rng.standard_normal((H, V)) * 0.01  # input to hidden
        self.Whh = rng.standard_normal((H, H)) * 0.01  # hidden to hidden
        self.Why = rng.standard_normal((V, H)) * 0.01  # hidden to output
        self.bh = np.zeros((H, 1))
        self.by = np.zeros((V, 1))
        self.memory = {name: np.zeros_like(getattr(self, name)) for name in PARAMS}  # Adagrad

    def loss_and_grads(self, inputs, targets, h_prev: np.ndarray):
        """Forward and BPTT over one chunk from ``h_prev [H, 1]``: the summed loss, the
        gradients (by name) and the chunk's last hidden state."""
        xs, hs, ps = {}, {-1: h_prev}, {}
        loss = 0.0
        for t in range(len(inputs)):
            xs[t] = np.zeros((self.V, 1))
            xs[t][inputs[t]] = 1.0
            hs[t] = np.tanh(self.Wxh @ xs[t] + self.Whh @ hs[t - 1] + self.bh)
            y = self.Why @ hs[t] + self.by
            ps[t] = np.exp(y) / np.sum(np.exp(y))  # softmax
            loss -= np.log(ps[t][targets[t], 0])
        grads = {name: np.zeros_like(getattr(self, name)) for name in PARAMS}
        dh_next = np.zeros_like(h_prev)
        for t in reversed(range(len(inputs))):
            dy = ps[t].copy()  # d loss / d y_t = p_t - onehot(c_{t+1})
            dy[targets[t]] -= 1.0
            grads["Why"] += dy @ hs[t].T
            grads["by"] += dy
            dh = self.Why.T @ dy + dh_next
            dh_raw = (1.0 - hs[t] * hs[t]) * dh  # through tanh
            grads["bh"] += dh_raw
            grads["Wxh"] += dh_raw @ xs[t].T
            grads["Whh"] += dh_raw @ hs[t - 1].T
            dh_next = self.Whh.T @ dh_raw
        return loss, grads, hs[len(inputs) - 1]

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """Clip every gradient to [-clip, clip], then one Adagrad step."""
        for name in PARAMS:
            g, m, p = grads[name], self.memory[name], getattr(self, name)
            np.clip(g, -self.clip, self.clip, out=g)
            m += g * g
            p += -self.lr * g / np.sqrt(m + 1e-8)

    def epoch(self, inputs: np.ndarray, targets: np.ndarray, seq_length: int) -> float:
        """One pass over the stream ``inputs -> targets`` (character indices) in chunks of
        ``seq_length``, the state carried; returns the mean loss per character."""
        h, total = np.zeros((self.H, 1)), 0.0
        for start in range(0, len(inputs), seq_length):
            stop = min(start + seq_length, len(inputs))
            loss, grads, h = self.loss_and_grads(inputs[start:stop], targets[start:stop], h)
            self.step(grads)
            total += loss
        return total / len(inputs)
