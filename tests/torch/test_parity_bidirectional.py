"""Bidirectional stacks give PyTorch's numbers: rnnlab parameters loaded into
torch.nn.RNN/LSTM/GRU(bidirectional=True) + Linear (strict), run with
pack_padded_sequence(enforce_sorted=False), give the same outputs, final states ([layers * 2, N,
H]), loss and every gradient in float64 (dropout 0); and a trained 2-layer bidirectional LSTM
with dropout gives the test loss rnnlab reports in eval mode. Skipped when PyTorch is not
installed."""

import json

import numpy as np
import pytest

from rnnlab.experiment.config import ModelConfig
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab_numpy.backend import NumpyBackend
from tests.support.paths import SUPPORT
from tests.support.torch_twin import TorchTwin, assert_gradients_match, relative_error, torch

pytestmark = pytest.mark.torch
pack = torch.nn.utils.rnn.pack_padded_sequence
unpack = torch.nn.utils.rnn.pad_packed_sequence

T, N, D, H = 7, 5, 2, 4  # padded steps, batch, input size, hidden size
LENGTHS = np.array([4, 7, 1, 3, 6])  # unsorted on purpose
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASES = [("mse", "last", 2), ("xent", "every", 3), ("mse", "every", 2), ("xent", "last", 3)]


class TorchBiModel(TorchTwin):
    """The torch twin of a bidirectional rnnlab model: the head reads every step's
    [forward ; reverse] outputs, or [h_n forward ; h_n reverse] of the top layer."""

    def __init__(self, cell, nonlinearity, layers, out, inputs=D, hidden=H, dropout=0.0):
        super().__init__(
            cell, nonlinearity, layers, out, inputs, hidden, bidirectional=True, dropout=dropout
        )

    def forward(self, x, lengths, target):
        packed, state = self.rnn(pack(x, torch.from_numpy(lengths), enforce_sorted=False))
        hs, _ = unpack(packed, total_length=x.shape[0])
        h_n = state[0] if isinstance(state, tuple) else state
        top = torch.cat([h_n[-2], h_n[-1]], dim=-1) if target == "last" else hs
        return self.head(top), hs, state


@pytest.mark.parametrize("lengths", [True, False], ids=["packed", "full"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("loss,target,out", CASES)
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_bidirectional_matches_pytorch(cell, nonlinearity, layers, loss, target, out, lengths):
    rng = np.random.default_rng(11)
    cfg = ModelConfig(
        cell=cell, hidden_size=H, layers=layers, nonlinearity=nonlinearity, bidirectional=True
    )
    params = init_params(cfg, Shape(D, out), rng)
    model = Model(cfg, NumpyBackend(), params)
    lens = LENGTHS if lengths else np.full(N, T)
    x = rng.normal(size=(T, N, D))
    valid = np.arange(T)[:, None] < lens[None, :]
    x[~valid] = 1e6  # garbage in the padding: neither side may read it
    lead = (N,) if target == "last" else (T, N)
    y = rng.normal(size=(*lead, out)) if loss == "mse" else rng.integers(0, out, size=lead)

    twin = TorchBiModel(cell, nonlinearity, layers, out).load(params)
    out_t, hs_t, state_t = twin(torch.from_numpy(x), lens, target)
    y_t = torch.from_numpy(y)
    mask = torch.from_numpy(valid)
    out_v, y_v = (out_t[mask], y_t[mask]) if target == "every" else (out_t, y_t)
    if loss == "mse":
        loss_t = torch.nn.functional.mse_loss(out_v, y_v)
    else:
        loss_t = torch.nn.functional.cross_entropy(out_v, y_v)
    loss_t.backward()

    given = {"lengths": LENGTHS} if lengths else {}
    got = model.predict(x, target, **given)
    want = out_t.detach().numpy()
    if target == "every":  # outputs at padded steps count for nothing; compare valid ones
        got, want = got[valid], want[valid]
    assert relative_error(got, want) <= 1e-10
    hs, final, _ = model._layers_forward(x, None, given.get("lengths"))
    assert relative_error(hs, hs_t.detach().numpy()) <= 1e-10  # [forward ; reverse], 0 padded
    torch_final = state_t if isinstance(state_t, tuple) else (state_t,)
    for i, s in enumerate(torch_final):  # h_n (and c_n): [layers * 2, N, H]
        mine = np.stack([state[i] for state in final])
        assert mine.shape == (layers * 2, N, H)
        assert relative_error(mine, s.detach().numpy()) <= 1e-10, f"final state {i}"

    value, grads, _ = model.loss_and_grads(x, y, loss, target, **given)
    assert value == pytest.approx(loss_t.item(), rel=1e-12)
    assert list(params) == [name for name, _ in twin.named_parameters()]  # PyTorch's order
    assert_gradients_match(grads, twin, f"{cell}/{nonlinearity}")


@pytest.mark.slow
def test_a_trained_bidirectional_lstm_with_dropout_gives_its_test_loss_in_pytorch(tmp_path):
    """The bar of issue 13: a 2-layer bidirectional LSTM with dropout, trained on
    variable-length data, loaded into torch.nn.LSTM(bidirectional=True) (strict) and run on
    packed sequences in eval mode, gives the test loss rnnlab reports (1e-9 relative)."""
    from rnnlab.cli.common import load_experiment
    from rnnlab.training.run import run_experiment
    from rnnlab.training.session import prepare

    plugin = str(SUPPORT / "varlen_task.py")
    path = tmp_path / "varlen.toml"
    path.write_text(
        '[task]\nname = "varlen"\ntarget = "every"\npad = 1e6\n'
        '[model]\ncell = "lstm"\nhidden_size = 6\nlayers = 2\n'
        "bidirectional = true\ndropout = 0.3\n"
        "[train]\nepochs = 2\nbatch_size = 16\nbucket_by_length = true\n"
    )
    exp, registry = load_experiment(str(path), [], [plugin])
    _, run_dir = run_experiment(exp, registry, out_root=tmp_path / "runs")
    reported = json.loads((run_dir.path / "summary.json").read_text())["metrics"]["test"]["loss"]

    test = prepare(exp, registry).dataset.splits["test"]  # the same data, rebuilt from the seed
    with np.load(run_dir.path / "params.npz") as data:
        twin = TorchBiModel("lstm", "tanh", 2, 2, inputs=1, hidden=6, dropout=0.3).load(data)
    twin.eval()  # no dropout, as rnnlab's evaluation
    with torch.no_grad():
        out_t, _, _ = twin(torch.from_numpy(test.x), test.lengths, "every")
        mask = torch.from_numpy(np.arange(test.x.shape[0])[:, None] < test.lengths[None, :])
        loss_t = torch.nn.functional.cross_entropy(out_t[mask], torch.from_numpy(test.y)[mask])
    relative = abs(loss_t.item() - reported) / abs(reported)
    print(
        f"bidirectional lstm, dropout 0.3: torch test loss {loss_t.item():.12g}, rnnlab "
        f"{reported:.12g}, relative difference {relative:.1e}"
    )
    assert relative <= 1e-9, (loss_t.item(), reported)
