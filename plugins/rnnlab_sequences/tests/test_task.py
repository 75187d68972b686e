"""The sequences task: JSON Lines and CSV, numbers and text, padding with lengths, stratified
or given splits, classification and regression metrics against their baselines, bad data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.registry.manager import Registry
from rnnlab.specs import TaskContext
from rnnlab.testing import check_task, make_task
from rnnlab_sequences import scores
from tests.support.paths import ROOT

SPEC = Registry().task("sequences")


def write_jsonl(folder: Path, records: list[dict], name: str = "d.jsonl") -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def numeric_records(n_per_class: int = 10, classes=("a", "b", "c"), seed: int = 0) -> list[dict]:
    """Sequences of 2-vectors of lengths 2..8 whose class sets the sign of their mean."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_per_class):
        for k, c in enumerate(classes):
            length = int(rng.integers(2, 9))
            steps = rng.normal(k - 1, 0.3, (length, 2)).round(4).tolist()
            out.append({"sequence": steps, "label": c, "id": i})
    return out


def build(folder: Path, seed: int = 0, **options):
    task = make_task(SPEC, {"path": "d.jsonl", **options}, TaskContext(folder))
    return task, task.build(np.random.default_rng(seed))


class Fixed:
    """A 'model' that returns given outputs."""

    def __init__(self, out):
        self.out = out

    def predict(self, x, target="last", lengths=None):
        return self.out


def test_numeric_vectors_padded_with_lengths(tmp_path):
    records = numeric_records()
    write_jsonl(tmp_path, records)
    _, data = build(tmp_path, normalize=False)
    assert (data.loss, data.target, data.input_size, data.output_size) == ("xent", "last", 2, 3)
    seen = 0
    for s in data.splits.values():
        T, N, _ = s.x.shape
        assert s.lengths.dtype == np.int64 and T == s.lengths.max()
        for n in range(N):
            assert np.all(s.x[s.lengths[n] :, n] == 0)  # padded after the end
        seen += N
    assert seen == len(records)
    lengths = sorted(len(r["sequence"]) for r in records)
    assert sorted(np.concatenate([s.lengths for s in data.splits.values()])) == lengths
    assert data.saved["classes"] == ["a", "b", "c"]


def test_stratified_split_is_seeded_and_keeps_class_shares(tmp_path):
    write_jsonl(tmp_path, numeric_records(20))
    _, a = build(tmp_path, seed=0)
    _, b = build(tmp_path, seed=0)
    _, c = build(tmp_path, seed=1)
    assert a.saved["class_counts"] == {
        "train": {"a": 14, "b": 14, "c": 14},
        "val": {"a": 3, "b": 3, "c": 3},
        "test": {"a": 3, "b": 3, "c": 3},
    }
    np.testing.assert_array_equal(a.splits["test"].x, b.splits["test"].x)
    assert not np.array_equal(a.meta["parts"]["test"], c.meta["parts"]["test"])


def test_normalisation_uses_train_steps_only(tmp_path):
    write_jsonl(tmp_path, numeric_records())
    _, data = build(tmp_path)
    train = data.splits["train"]
    valid = np.arange(train.x.shape[0])[:, None] < train.lengths[None, :]
    steps = train.x[valid]
    np.testing.assert_allclose(steps.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(steps.std(axis=0), 1, atol=1e-12)


def test_given_split_field_and_val_drawn_from_train(tmp_path):
    records = numeric_records(12)
    for i, r in enumerate(records):
        r["part"] = "test" if i % 4 == 0 else "train"
    write_jsonl(tmp_path, records)
    _, data = build(tmp_path, split_field="part", val_fraction=0.25, train_fraction=0.5)
    parts = data.meta["parts"]
    assert set(parts["test"]) == {i for i in range(len(records)) if i % 4 == 0}
    assert len(parts["val"]) == 9 and len(parts["train"]) == 18  # a third of train, per class
    assert not set(parts["val"]) & set(parts["train"])


def test_text_sequences_one_hot_with_saved_vocabulary(tmp_path):
    words = {"x": ["ab", "abc", "abcd", "ba"], "y": ["zz", "zzy", "yz", "z"]}
    records = [{"sequence": w, "label": k} for k, ws in words.items() for w in ws * 3]
    write_jsonl(tmp_path, records)
    _, data = build(tmp_path)
    vocab = data.saved["vocabulary"]
    assert vocab == sorted(set("abcdyz")) and data.input_size == len(vocab)
    s = data.splits["train"]
    first = data.meta["examples"][data.meta["parts"]["train"][0]].steps
    decoded = "".join(vocab[i] for i in s.x[: s.lengths[0], 0].argmax(axis=1))
    assert decoded == first and np.all(s.x[: s.lengths[0], 0].sum(axis=1) == 1)


def test_csv_text_rows_and_csv_step_rows(tmp_path):
    rows = ["text,label"] + [
        f"{w},{k}" for k, ws in {"p": ["aab", "ab"], "q": ["bb", "bba"]}.items() for w in ws * 4
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    _, data = build(tmp_path, path="t.csv", sequence_field="text")
    assert data.saved["vocabulary"] == ["a", "b"] and data.output_size == 2
    lines = ["id,t,v1,v2,label"]
    for i in range(12):
        for t in range(2 + i % 3):
            lines.append(f"s{i},{t},{i + t},{-t},{'up' if i % 2 else 'down'}")
    (tmp_path / "long.csv").write_text("\n".join(lines) + "\n")
    _, data = build(tmp_path, path="long.csv", id_field="id", columns=["v1", "v2"], normalize=False)
    assert data.input_size == 2 and data.saved["data"]["examples"] == 12
    lengths = np.concatenate([s.lengths for s in data.splits.values()])
    assert sorted(lengths) == sorted(2 + i % 3 for i in range(12))


def test_classification_metrics_and_majority_baseline(tmp_path):
    write_jsonl(tmp_path, numeric_records(10))
    task, data = build(tmp_path)
    truth = data.splits["test"].y
    logits = np.eye(3)[truth]
    m = task.metrics(Fixed(logits), data, "test")
    assert m["accuracy"] == 1 and m["macro_f1"] == 1
    assert m["majority_accuracy"] == pytest.approx(np.mean(truth == data.meta["majority"]))
    # always "a": F1(a) = 2p r / (p + r) with p = share of a, r = 1; F1(b) = F1(c) = 0
    p = np.mean(truth == 0)
    assert task.metrics(Fixed(np.eye(3)[np.zeros_like(truth)]), data, "test")[
        "macro_f1"
    ] == pytest.approx(2 * p / (p + 1) / 3)
    demo = task.demo(Fixed(logits), data, None)
    assert demo.columns[:4] == ["class", "train", "val", "test"] and len(demo.rows) == 3


def test_macro_f1_matches_the_usual_definition():
    truth = np.array([0, 0, 1, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0, 3])
    # per class: F1(0) = 2*1/(2+2) = .5, F1(1) = 2*2/(3+2) = .8, F1(2) = 2*1/(1+3) = .5,
    # F1(3) = 0 (predicted, never true); class 4 absent from both: not counted
    got = scores.classification(pred, truth, 5)
    assert got["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.5 + 0) / 4)
    assert got["accuracy"] == pytest.approx(4 / 7)


def test_regression_in_label_units_against_the_mean(tmp_path):
    rng = np.random.default_rng(0)
    records = [
        {
            "sequence": rng.normal(size=int(rng.integers(1, 6))).tolist(),
            "label": float(100 + 10 * i),
        }
        for i in range(40)
    ]
    write_jsonl(tmp_path, records)
    task, data = build(tmp_path)
    assert (data.loss, data.output_size, data.input_size) == ("mse", 1, 1)
    m = task.metrics(Fixed(data.splits["test"].y), data, "test")
    assert m["mse"] == pytest.approx(0, abs=1e-9)
    labels = np.array([r["label"] for r in records])
    train_mean = labels[data.meta["parts"]["train"]].mean()
    test = labels[data.meta["parts"]["test"]]
    assert m["mean_mae"] == pytest.approx(np.mean(np.abs(test - train_mean)))
    assert task.demo(Fixed(data.splits["test"].y), data, None).rows[0][2] == f"{test[0]:.5g}"


def lines(*objs) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)


OK = [
    {"sequence": [1, 2], "label": "a"},
    {"sequence": [2, 3], "label": "a"},
    {"sequence": [3, 1], "label": "b"},
    {"sequence": [1, 1], "label": "b"},
]
BAD = {
    "no such file": ("d.jsonl", None, "no such file"),
    "encoding": (
        "d.jsonl",
        b'{"sequence": [1], "label": "a"}\n{"sequence": "\xff"}\n',
        "line 2, character 15, key 'sequence': not UTF-8",
    ),
    "csv encoding": (
        "d.csv",
        b"text,label\nab,x\nc\xe9,y\n",
        "line 3, character 2, column 'text': not UTF-8",
    ),
    "csv no header": ("d.csv", "1,2\n3,4\n", "line 1 holds numbers"),
    "csv missing column": ("d.csv", "words,label\nab,x\n", "no column 'sequence' in"),
    "csv data for a header": ("d.csv", "ab,x\nab,x\n", "(columns: ab, x); line 1 must be a header"),
    "invalid json": (
        "d.jsonl",
        lines(*OK, '{"sequence": [1, 2], "label": }'),
        "line 5, character 31: not valid JSON",
    ),
    "no key": ("d.jsonl", lines(*OK, {"seq": [1], "label": "a"}), "line 5: no key 'sequence'"),
    "non-numeric step": (
        "d.jsonl",
        lines(*OK, {"sequence": [1, "x"], "label": "a"}),
        "line 5, key 'sequence', step 2: \"x\" is not a finite number",
    ),
    "csv non-numeric step": (
        "d.csv",
        "id,v,label\n1,0.5,a\n1,zz,a\n2,1,b\n",
        "line 3, column 'v': 'zz' is not a finite number",
    ),
    "ragged vectors": (
        "d.jsonl",
        lines(*OK[:2], {"sequence": [[1, 2], [3]], "label": "b"}),
        "line 3, key 'sequence', step 2: 1 values, but step 1 has 2",
    ),
    "width differs": (
        "d.jsonl",
        lines({"sequence": [[1, 2]], "label": "a"}, {"sequence": [[1, 2, 3]], "label": "a"}),
        "line 2, key 'sequence': 3 values per step, but line 1 has 2",
    ),
    "empty sequence": (
        "d.jsonl",
        lines(*OK, {"sequence": [], "label": "a"}),
        "line 5, key 'sequence': empty sequence",
    ),
    "empty text": (
        "d.jsonl",
        lines({"sequence": "ab", "label": "a"}, {"sequence": "", "label": "a"}),
        "line 2, key 'sequence': empty sequence",
    ),
    "csv empty sequence": (
        "d.csv",
        "sequence,label\nab,x\n,x\n",
        "line 3, column 'sequence': empty sequence",
    ),
    "label seen once": (
        "d.jsonl",
        lines(*OK, {"sequence": [5], "label": "c"}),
        "line 5, key 'label': class 'c' appears only once",
    ),
    "mixed kinds": (
        "d.jsonl",
        lines(*OK, {"sequence": "ab", "label": "a"}),
        "line 5, key 'sequence': holds text, but line 1 holds numbers",
    ),
    "null label": (
        "d.jsonl",
        lines(*OK, {"sequence": [1], "label": None}),
        "line 5, key 'label': a label must be a class name or a number, got null",
    ),
    "label changes in a sequence": (
        "d.csv",
        "id,v,label\n1,0.5,a\n1,1,b\n",
        "line 3, column 'label': 'b', but sequence '1' has label 'a' from line 2",
    ),
    "not an object": ("d.jsonl", lines(*OK, "[1, 2]"), "line 5: expected a JSON object"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_data_names_file_line_and_field(tmp_path, case):
    name, content, words = BAD[case]
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    options = {"id_field": "id"} if "id,v" in str(content) else {}
    with pytest.raises(ConfigError) as info:
        build(tmp_path, path=name, **options)
    key = "sequence_field" if case in ("csv missing column", "csv data for a header") else "path"
    assert info.value.table == "task" and info.value.key == key
    assert str(path) in str(info.value) and words in str(info.value), str(info.value)


def test_given_splits_that_cannot_work(tmp_path):
    records = [dict(r, split="train") for r in OK * 4] + [
        {"sequence": [9], "label": "z", "split": "test"}
    ] * 2
    write_jsonl(tmp_path, records)
    with pytest.raises(
        ConfigError, match="line 17, key 'label': class 'z' is in the test split but never in train"
    ):
        build(tmp_path, split_field="split")
    write_jsonl(tmp_path, [dict(r, split="train") for r in OK * 4])
    with pytest.raises(ConfigError, match="the test split is empty"):
        build(tmp_path, split_field="split")
    write_jsonl(tmp_path, [dict(r, split="Train") for r in OK])
    with pytest.raises(ConfigError, match="line 1, key 'split': 'Train' is not a split"):
        build(tmp_path, split_field="split")


def test_labels_option(tmp_path):
    records = [{"sequence": [i, i + 1], "label": i % 3} for i in range(30)]
    write_jsonl(tmp_path, records)
    assert build(tmp_path)[1].loss == "mse"  # JSON numbers: regression
    _, data = build(tmp_path, labels="classes")
    assert data.loss == "xent" and data.saved["classes"] == ["0", "1", "2"]
    write_jsonl(tmp_path, records[:10] + [{"sequence": [1], "label": "x"}] * 2)
    with pytest.raises(ConfigError, match="holds numbers .line 1. and class names .line 11."):
        build(tmp_path)


def test_conformance_text_regression_and_csv_steps(tmp_path):
    words = [
        ("hello", "en"),
        ("world", "en"),
        ("hallo", "de"),
        ("welt", "de"),
        ("bonjour", "fr"),
        ("monde", "fr"),
    ]
    write_jsonl(tmp_path, [{"sequence": w, "label": k} for w, k in words * 6], "text.jsonl")
    check_task(SPEC, {"path": "text.jsonl"}, context=TaskContext(tmp_path), seeds=(0,))
    rng = np.random.default_rng(1)
    seqs = [rng.normal(size=int(rng.integers(1, 7))) for _ in range(60)]
    write_jsonl(
        tmp_path, [{"sequence": s.tolist(), "label": float(s.sum())} for s in seqs], "reg.jsonl"
    )
    check_task(SPEC, {"path": "reg.jsonl"}, context=TaskContext(tmp_path), seeds=(0,))


@settings(max_examples=20, deadline=None)
@given(
    counts=st.lists(st.integers(2, 15), min_size=2, max_size=5),
    train=st.floats(0.3, 0.7),
    val=st.floats(0.1, 0.25),
    seed=st.integers(0, 2**16),
)
def test_stratified_splits_partition_every_class(tmp_path_factory, counts, train, val, seed):
    folder = tmp_path_factory.mktemp("prop")
    rng = np.random.default_rng(seed)
    records = [
        {"sequence": rng.normal(size=(int(rng.integers(1, 5)), 2)).tolist(), "label": f"c{k}"}
        for k, n in enumerate(counts)
        for _ in range(n)
    ]
    write_jsonl(folder, records)
    try:
        _, data = build(folder, seed=seed, train_fraction=train, val_fraction=val)
    except ConfigError as exc:
        assert "split is empty" in str(exc)
        return
    parts = data.meta["parts"]
    every = np.concatenate(list(parts.values()))
    assert sorted(every) == list(range(len(records)))  # a partition
    for k in range(len(counts)):
        assert data.saved["class_counts"]["train"][f"c{k}"] >= 1
    for name, s in data.splits.items():
        assert len(s.lengths) == len(parts[name]) == s.x.shape[1]
        want = [len(records[i]["sequence"]) for i in parts[name]]
        np.testing.assert_array_equal(s.lengths, want)


@pytest.mark.slow
def test_japanese_vowels_run_end_to_end(tmp_path):
    exp = ROOT / "experiments" / "japanese_vowels.toml"
    result = CliRunner().invoke(
        main, ["run", str(exp), "--out", str(tmp_path), "--set", "train.epochs=1", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["dataset"]["sizes"]["test"] == 370
    assert summary["metrics"]["test"]["majority_accuracy"] == pytest.approx(31 / 370)


@pytest.mark.parametrize("kind", ["classes", "numbers"])
def test_figure_is_drawn(tmp_path, kind):
    pytest.importorskip("matplotlib")
    from rnnlab.display import figures as plots

    records = numeric_records(10)
    if kind == "numbers":
        records = [dict(r, label=float(np.sum(r["sequence"]))) for r in records]
    write_jsonl(tmp_path, records)
    task, data = build(tmp_path)
    out = np.eye(3)[data.splits["test"].y] if kind == "classes" else data.splits["test"].y
    path = plots.task_figure(task, Fixed(out), data, tmp_path)
    assert path.name == ("confusion.png" if kind == "classes" else "predictions.png")
    assert path.stat().st_size > 8000
