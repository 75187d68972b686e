"""Variable-length sequences give PyTorch's packed-sequence numbers: rnnlab parameters loaded into
torch.nn.RNN/LSTM/GRU + Linear (strict), run with pack_padded_sequence(enforce_sorted=False),
give the same outputs, final states, loss and every gradient, in float64. Skipped when PyTorch
is not installed."""

import numpy as np
import pytest

from tests.support.paths import SUPPORT
from tests.support.torch_twin import (
    TorchTwin,
    assert_gradients_match,
    relative_error,
    rnnlab_model,
    torch,
)

pytestmark = pytest.mark.torch
pack = torch.nn.utils.rnn.pack_padded_sequence
unpack = torch.nn.utils.rnn.pad_packed_sequence

T, N, D, H = 7, 5, 2, 4  # padded steps, batch, input size, hidden size
LENGTHS = np.array([4, 7, 1, 3, 6])  # unsorted on purpose
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASES = [("mse", "last", 2), ("xent", "every", 3), ("mse", "every", 2), ("xent", "last", 3)]


class TorchModel(TorchTwin):
    """The torch twin of an rnnlab model on packed sequences."""

    def __init__(self, cell, nonlinearity, layers, out, inputs=D, hidden=H):
        super().__init__(cell, nonlinearity, layers, out, inputs=inputs, hidden=hidden)

    def forward(self, x, lengths, target):
        packed, state = self.rnn(pack(x, torch.from_numpy(lengths), enforce_sorted=False))
        hs, _ = unpack(packed, total_length=x.shape[0])
        h_n = state[0] if isinstance(state, tuple) else state
        out = self.head(h_n[-1] if target == "last" else hs)
        return out, hs, state


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("loss,target,out", CASES)
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_packed_sequences_match_pytorch(cell, nonlinearity, layers, loss, target, out):
    rng = np.random.default_rng(7)
    model = rnnlab_model(cell, nonlinearity, layers, out, inputs=D, hidden=H, rng=rng)
    x = rng.normal(size=(T, N, D))
    valid = np.arange(T)[:, None] < LENGTHS[None, :]
    x[~valid] = 1e6  # garbage in the padding: neither side may read it
    lead = (N,) if target == "last" else (T, N)
    y = rng.normal(size=(*lead, out)) if loss == "mse" else rng.integers(0, out, size=lead)

    twin = TorchModel(cell, nonlinearity, layers, out).load(model.params)
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
    assert_gradients_match(grads, twin, f"{cell}/{nonlinearity}")


@pytest.mark.slow
@pytest.mark.parametrize("target,cell", [("last", "lstm"), ("every", "gru"), ("every", "rnn")])
def test_a_trained_run_gives_its_test_loss_in_pytorch(tmp_path, target, cell):
    """The bar of issue 12: a variable-length run's parameters, loaded into torch and run on
    packed sequences, give the test loss rnnlab reports (1e-9 relative)."""
    import json

    from rnnlab.cli.common import load_experiment
    from rnnlab.training.run import run_experiment
    from rnnlab.training.session import prepare

    plugin = str(SUPPORT / "varlen_task.py")
    path = tmp_path / "varlen.toml"
    path.write_text(
        f'[task]\nname = "varlen"\ntarget = "{target}"\npad = 1e6\n'
        f'[model]\ncell = "{cell}"\nhidden_size = 6\nlayers = 2\n'
        f"[train]\nepochs = 2\nbatch_size = 16\nbucket_by_length = true\n"
    )
    exp, registry = load_experiment(str(path), [], [plugin])
    _, run_dir = run_experiment(exp, registry, out_root=tmp_path / "runs")
    reported = json.loads((run_dir.path / "summary.json").read_text())["metrics"]["test"]["loss"]

    test = prepare(exp, registry).dataset.splits["test"]  # the same data, rebuilt from the seed
    out = 1 if target == "last" else 2
    with np.load(run_dir.path / "params.npz") as data:
        twin = TorchModel(cell, "tanh", 2, out, inputs=1, hidden=6).load(data)
    with torch.no_grad():
        out_t, _, _ = twin(torch.from_numpy(test.x), test.lengths, target)
        if target == "last":
            loss_t = torch.nn.functional.mse_loss(out_t, torch.from_numpy(test.y))
        else:
            mask = torch.from_numpy(np.arange(test.x.shape[0])[:, None] < test.lengths[None, :])
            loss_t = torch.nn.functional.cross_entropy(out_t[mask], torch.from_numpy(test.y)[mask])
    relative = abs(loss_t.item() - reported) / abs(reported)
    print(
        f"{cell}/{target}: torch test loss {loss_t.item():.12g}, rnnlab {reported:.12g}, "
        f"relative difference {relative:.1e}"
    )
    assert relative <= 1e-9, (loss_t.item(), reported)
