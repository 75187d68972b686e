"""Variable-length sequences give PyTorch's packed-sequence numbers: rnnlab parameters loaded into
torch.nn.RNN/LSTM/GRU + Linear (strict), run with pack_padded_sequence(enforce_sorted=False),
give the same outputs, final states, loss and every gradient, in float64. Skipped when PyTorch
is not installed."""

import numpy as np
import pytest

from rnnlab.config import ModelConfig
from rnnlab.model import Model, Shape, init_params
from rnnlab_numpy.backend import NumpyBackend

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
pack = torch.nn.utils.rnn.pack_padded_sequence
unpack = torch.nn.utils.rnn.pad_packed_sequence

T, N, D, H = 7, 5, 2, 4  # padded steps, batch, input size, hidden size
LENGTHS = np.array([4, 7, 1, 3, 6])  # unsorted on purpose
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASES = [("mse", "last", 2), ("xent", "every", 3), ("mse", "every", 2), ("xent", "last", 3)]


class TorchModel(torch.nn.Module):
    """The torch twin of an rnnlab model on packed sequences: attributes ``rnn`` and ``head``."""

    def __init__(self, cell, nonlinearity, layers, out):
        super().__init__()
        if cell == "rnn":
            self.rnn = torch.nn.RNN(D, H, layers, nonlinearity=nonlinearity)
        else:
            self.rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](D, H, layers)
        self.head = torch.nn.Linear(H, out)

    def forward(self, x, lengths, target):
        packed, state = self.rnn(pack(x, torch.from_numpy(lengths), enforce_sorted=False))
        hs, _ = unpack(packed, total_length=x.shape[0])
        h_n = state[0] if isinstance(state, tuple) else state
        out = self.head(h_n[-1] if target == "last" else hs)
        return out, hs, state


def relative_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("loss,target,out", CASES)
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_packed_sequences_match_pytorch(cell, nonlinearity, layers, loss, target, out):
    rng = np.random.default_rng(7)
    cfg = ModelConfig(cell=cell, hidden_size=H, layers=layers, nonlinearity=nonlinearity)
    params = init_params(cfg, Shape(D, out), rng)
    model = Model(cfg, NumpyBackend(), params)
    x = rng.normal(size=(T, N, D))
    valid = np.arange(T)[:, None] < LENGTHS[None, :]
    x[~valid] = 1e6  # garbage in the padding: neither side may read it
    lead = (N,) if target == "last" else (T, N)
    y = rng.normal(size=(*lead, out)) if loss == "mse" else rng.integers(0, out, size=lead)

    twin = TorchModel(cell, nonlinearity, layers, out).double()
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in params.items()}, strict=True)
    out_t, hs_t, state_t = twin(torch.from_numpy(x), LENGTHS, target)
    y_t = torch.from_numpy(y)
    if target == "every":  # only valid steps count
        mask = torch.from_numpy(valid)
        out_v, y_v = out_t[mask], y_t[mask]
    else:
        out_v, y_v = out_t, y_t
    if loss == "mse":
        loss_t = torch.nn.functional.mse_loss(out_v, y_v)
    else:
        loss_t = torch.nn.functional.cross_entropy(out_v, y_v)
    loss_t.backward()

    got = model.predict(x, target, lengths=LENGTHS)
    want = out_t.detach().numpy()
    if target == "every":  # outputs at padded steps count for nothing; compare valid ones
        got, want = got[valid], want[valid]
    assert relative_error(got, want) <= 1e-10
    hs, final, _ = model._layers_forward(x, None, LENGTHS)
    assert relative_error(hs, hs_t.detach().numpy()) <= 1e-10  # zeros at padded steps alike
    torch_final = state_t if isinstance(state_t, tuple) else (state_t,)
    for i, s in enumerate(torch_final):  # h_n (and c_n): [layers, N, H]
        mine = np.stack([layer_state[i] for layer_state in final])
        assert relative_error(mine, s.detach().numpy()) <= 1e-10, f"final state {i}"

    value, grads, _ = model.loss_and_grads(x, y, loss, target, lengths=LENGTHS)
    assert value == pytest.approx(loss_t.item(), rel=1e-12)
    torch_grads = {name: p.grad.numpy() for name, p in twin.named_parameters()}
    assert set(torch_grads) == set(grads)
    for name, g in grads.items():
        err = relative_error(g, torch_grads[name])
        assert err <= 1e-10, f"{cell}/{nonlinearity} {name}: relative error {err:.2e}"
