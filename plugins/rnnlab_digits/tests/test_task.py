"""The digits task: the file read as documented (and its problems named), the pixel order fixed
by its own seed, seeded disjoint splits, the baselines by hand, a clear error without
scikit-learn, and the conformance kit on the real images."""

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.plugin import ConfigError, TaskContext
from rnnlab.registry.manager import Registry
from rnnlab.sweep import build_plan
from rnnlab.testing import check_task
from rnnlab_digits import register_tasks, source
from rnnlab_digits.task import OPTIONS, DigitsTask, class_frequencies, pixel_order, sequences
from tests.support.paths import EXPERIMENTS

SPEC = register_tasks()[0]
HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None


def write_digits(path: Path, n=40, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A small digits file (gzip, the packaged format): random pixels, digits 0..9 in turn."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 17, (n, 64))
    labels = np.arange(n) % 10
    lines = [",".join(map(str, [*img, lab])) for img, lab in zip(images, labels, strict=True)]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return images, labels


def task(tmp_path=None, **options):
    values = {o.name: o.default for o in OPTIONS}
    values.update(options)
    return DigitsTask(values, TaskContext(tmp_path or Path.cwd()))


def small(tmp_path, seed=0, **options):
    write_digits(tmp_path / "small.csv.gz")
    t = task(tmp_path, file="small.csv.gz", val_size=8, test_size=10, **options)
    return t, t.build(np.random.default_rng(seed))


def test_reads_the_file_it_is_given(tmp_path):
    images, labels = write_digits(tmp_path / "d.csv.gz")
    got_images, got_labels = source.read(tmp_path / "d.csv.gz")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.dtype == np.uint8 and got_labels.dtype == np.int64


@pytest.mark.parametrize(
    "line, says",
    [
        ("1,2,3", "line 2: expected 64 pixels"),
        (",".join(["17"] * 64 + ["1"]), "line 2"),
        (",".join(["0"] * 64 + ["12"]), "the digit is 12"),
    ],
)
def test_a_malformed_line_is_named(tmp_path, line, says):
    path = tmp_path / "bad.csv"
    path.write_text(",".join(["0"] * 64 + ["3"]) + "\n" + line + "\n")
    with pytest.raises(ConfigError, match=says) as info:
        source.read(path)
    assert info.value.key == "file" and "bad.csv" in str(info.value)


def test_pixel_and_row_sequences_by_hand():
    image = np.arange(64).reshape(1, 64) % 17
    order = pixel_order(False, 0)
    x = sequences(image, order, "pixel")
    assert x.shape == (64, 1, 1)
    np.testing.assert_allclose(x[:, 0, 0], (np.arange(64) % 17) / 16)
    x = sequences(image, order, "row")
    assert x.shape == (8, 1, 8)
    np.testing.assert_allclose(x[2, 0], (np.arange(16, 24) % 17) / 16)  # the third row
    # permuted: step t reads pixel order[t]
    order = pixel_order(True, 3)
    np.testing.assert_allclose(sequences(image, order, "pixel")[:, 0, 0], image[0, order] / 16)
    np.testing.assert_allclose(sequences(image, order, "row")[1, 0], image[0, order[8:16]] / 16)


def test_the_permutation_is_fixed_by_its_own_seed(tmp_path):
    np.testing.assert_array_equal(pixel_order(True, 0), pixel_order(True, 0))
    assert sorted(pixel_order(True, 0).tolist()) == list(range(64))
    assert not np.array_equal(pixel_order(True, 0), pixel_order(True, 1))
    assert not np.array_equal(pixel_order(True, 0), np.arange(64))
    # the run's seed changes the split, never the order
    _, a = small(tmp_path, seed=0, permute=True)
    _, b = small(tmp_path, seed=1, permute=True)
    assert a.saved["pixel_order"] == b.saved["pixel_order"] == pixel_order(True, 0).tolist()


def test_splits_are_disjoint_seeded_and_sized(tmp_path):
    t, a = small(tmp_path, seed=4)
    _, b = small(tmp_path, seed=4)
    _, c = small(tmp_path, seed=5)
    assert {k: len(v) for k, v in a.splits.items()} == {"train": 22, "val": 8, "test": 10}
    for name in a.splits:
        assert a.splits[name].x.tobytes() == b.splits[name].x.tobytes()
        assert a.splits[name].y.tobytes() == b.splits[name].y.tobytes()
    assert a.splits["test"].x.tobytes() != c.splits["test"].x.tobytes()
    seen = [{img.tobytes() for img in a.meta["images"][n]} for n in ("train", "val", "test")]
    assert sum(map(len, seen)) == 40 and len(set.union(*seen)) == 40
    assert (a.input_size, a.output_size, a.loss, a.target) == (1, 10, "xent", "last")
    assert len(a.saved["sha256"]) == 64


def test_too_large_held_out_splits_are_a_config_error(tmp_path):
    write_digits(tmp_path / "small.csv.gz")
    t = task(tmp_path, file="small.csv.gz", val_size=20, test_size=20)
    with pytest.raises(ConfigError, match="leaves no training image"):
        t.build(np.random.default_rng(0))


class Fixed:
    def __init__(self, out):
        self.out = out

    def predict(self, x, target="last", lengths=None):
        return self.out[: x.shape[1]]


def test_metrics_and_baselines_by_hand(tmp_path):
    t, data = small(tmp_path, read="row")
    s = data.splits["test"]
    counts = np.bincount(data.splits["train"].y, minlength=10)
    prior = (counts + 1) / (counts.sum() + 10)
    np.testing.assert_allclose(class_frequencies(counts), prior)
    out = np.eye(10)[s.y] * 5
    out[:3] = np.eye(10)[(s.y[:3] + 1) % 10] * 5  # three of ten wrong
    m = t.metrics(Fixed(out), data, "test")
    assert m["accuracy"] == pytest.approx(0.7) and m["solved"] == 0.0
    assert m["baseline_acc"] == pytest.approx(np.mean(s.y == np.argmax(prior)))
    assert m["baseline_loss"] == pytest.approx(-np.mean(np.log(prior[s.y])))
    assert t.metrics(Fixed(np.eye(10)[s.y]), data, "test")["solved"] == 1.0
    demo = t.demo(Fixed(out), data, np.random.default_rng(0))
    assert len(demo.rows) == 8 and demo.rows[3][1:3] == [int(s.y[3]), int(s.y[3])]
    assert demo.rows[0][2] == (s.y[0] + 1) % 10  # one of the three wrong


def test_without_scikit_learn_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(source.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install 'rnnlab\[digits\]'") as info:
        task().build(np.random.default_rng(0))
    assert info.value.key == "file"


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        task(tmp_path, file="nope.csv.gz").build(np.random.default_rng(0))


@pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn (the digits extra) is not installed")
def test_the_packaged_images():
    images, labels = source.read(source.packaged_file())
    assert images.shape == (1797, 64) and images.max() == 16
    assert sorted(np.unique(labels).tolist()) == list(range(10))
    assert len({img.tobytes() for img in images}) == 1797  # no two alike: splits are disjoint
    data = task().build(np.random.default_rng(0))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 1197, "val": 300, "test": 300}
    assert data.splits["train"].x.shape == (64, 1197, 1)


@pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn (the digits extra) is not installed")
def test_conformance():
    check_task(SPEC, {"read": "row"})
    check_task(SPEC, {"permute": True}, seeds=(0,))


def test_shipped_experiments_and_sweep_are_valid_and_share_model_and_budget():
    ref = read_toml(EXPERIMENTS / "digits_pixel.toml")
    want = {"pixel": ("pixel", False), "permuted": ("pixel", True), "row": ("row", False)}
    for name, (how, permute) in want.items():
        raw = read_toml(EXPERIMENTS / f"digits_{name}.toml")
        assert (raw["task"]["read"], raw["task"]["permute"]) == (how, permute)
        assert raw["model"] == ref["model"] and raw["train"] == ref["train"]
        build_experiment(raw, Registry(), source=EXPERIMENTS / f"digits_{name}.toml")
    sweep = read_toml(EXPERIMENTS / "digits_sweep.toml")
    assert sweep["task"] == ref["task"] and sweep["train"] == ref["train"]
    assert sweep["sweep"]["seeds"] == [0, 1, 2, 3, 4]
    plan = build_plan(sweep, Registry(), source=EXPERIMENTS / "digits_sweep.toml")
    assert len(plan.variants) == 8
    assert sum("chrono_tmax" in v.raw["model"] for v in plan.variants) == 2
