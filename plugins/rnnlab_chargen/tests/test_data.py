"""Corpus, vocabulary, one-hot inputs and splits of the chargen task, and its errors."""

import sysconfig
from pathlib import Path

import numpy as np
import pytest

from rnnlab.errors import ConfigError, RnnlabError
from rnnlab.training.loop import RunInfo, fit
from rnnlab.training.session import prepare
from rnnlab_chargen.corpus import stdlib_file
from rnnlab_chargen.vocab import Vocabulary, one_hot
from tests.support.chargen import SENTENCE, experiment


def test_vocabulary_is_sorted_and_round_trips():
    v = Vocabulary.of("hello world")
    assert v.chars == [" ", "d", "e", "h", "l", "o", "r", "w"]
    ids = v.encode("hello")
    assert ids.tolist() == [3, 2, 4, 4, 5]
    assert v.decode(ids) == "hello"


def test_out_of_vocabulary_character_is_named_with_the_vocabulary():
    with pytest.raises(RnnlabError, match=r"character 'x' of the prime .* 3 characters: a b c"):
        Vocabulary.of("abc").encode("abx", "prime")


def test_one_hot():
    x = one_hot(np.array([[2, 0], [1, 2]]), 3)
    assert x.shape == (2, 2, 3)
    assert x.sum(axis=-1).tolist() == [[1, 1], [1, 1]]
    assert x.argmax(axis=-1).tolist() == [[2, 0], [1, 2]]


def distinct_text(n):
    """n characters, all different, in code-point order: a character's index is its position."""
    return "".join(chr(0x100 + i) for i in range(n))


def test_windows_split_by_position_never_cross_a_boundary(tmp_path):
    exp, registry = experiment(tmp_path, {"text": distinct_text(100), "window": 4, "stride": 1})
    data = prepare(exp, registry).dataset
    bounds = {"train": (0, 80), "val": (80, 90), "test": (90, 100)}
    assert data.input_size == data.output_size == 100
    assert (data.loss, data.target, data.chunk_length) == ("xent", "every", 0)
    for name, (lo, hi) in bounds.items():
        s = data.splits[name]
        pos = s.x.argmax(axis=-1)  # [T, N]: input positions (one-hot, so argmax is the index)
        assert s.x.sum(axis=-1).min() == 1 and s.x.max() == 1
        assert s.x.shape == (4, hi - lo - 4, 100)  # every start with a full window and target
        assert pos.min() == lo and s.y.max() == hi - 1  # inside the split, up to its last char
        np.testing.assert_array_equal(s.y, pos + 1)  # target = the next character
        np.testing.assert_array_equal(pos[0], np.arange(lo, hi - 4))  # stride 1


def test_default_stride_is_the_window(tmp_path):
    exp, registry = experiment(tmp_path, {"text": distinct_text(100), "window": 5})
    x = prepare(exp, registry).dataset.splits["train"].x
    assert x.argmax(axis=-1)[0].tolist() == [
        0,
        5,
        10,
        15,
        20,
        25,
        30,
        35,
        40,
        45,
        50,
        55,
        60,
        65,
        70,
    ]


def test_stateful_streams(tmp_path):
    exp, registry = experiment(
        tmp_path,
        {"text": distinct_text(100), "mode": "stateful", "window": 3},
        train={"batch_size": 4},
    )
    data = prepare(exp, registry).dataset
    assert data.chunk_length == 3
    train = data.splits["train"]  # 79 input steps cut into 4 streams of 19 (3 dropped)
    assert train.x.shape == (19, 4, 100)
    pos = train.x.argmax(axis=-1)
    np.testing.assert_array_equal(pos[:, 1], np.arange(19, 38))  # stream 1: consecutive text
    np.testing.assert_array_equal(train.y, pos + 1)
    val = data.splits["val"]  # one stream, state carried through it
    assert val.x.shape == (9, 1, 100)
    np.testing.assert_array_equal(val.x.argmax(axis=-1)[:, 0], np.arange(80, 89))
    np.testing.assert_array_equal(val.y[:, 0], np.arange(81, 90))


def test_vocabulary_and_corpus_are_saved(tmp_path):
    exp, registry = experiment(tmp_path, {"text": SENTENCE, "repeat": 3, "window": 5})
    saved = prepare(exp, registry).dataset.saved
    assert "".join(saved["vocabulary"]) == "".join(sorted(set(SENTENCE)))
    assert saved["corpus"]["characters"] == 3 * len(SENTENCE)
    assert sum(saved["split_characters"].values()) == 3 * len(SENTENCE)


def test_path_is_relative_to_the_experiment_file(tmp_path):
    (tmp_path / "corpus.txt").write_text("héllo wörld " * 20, encoding="utf-8")
    exp, registry = experiment(tmp_path, {"path": "corpus.txt", "window": 5})
    assert "ö" in prepare(exp, registry).dataset.saved["vocabulary"]


def test_stdlib_modules_are_read_from_the_installation(tmp_path):
    exp, registry = experiment(tmp_path, {"stdlib_modules": ["this", "json.tool"], "window": 10})
    saved = prepare(exp, registry).dataset.saved
    files = [Path(f) for f in saved["corpus"]["stdlib_files"]]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    assert files == [stdlib / "this.py", stdlib / "json" / "tool.py"]
    assert saved["corpus"]["characters"] == sum(len(f.read_text("utf-8")) for f in files)
    assert stdlib_file("json") == stdlib / "json" / "__init__.py"


@pytest.mark.parametrize(
    "task, match",
    [
        ({"path": "missing.txt"}, r"\[task.path\]: .*missing.txt: no such file \(looked in "),
        ({"path": "empty.txt"}, r"\[task.path\]: the corpus is empty"),
        ({"path": "latin1.txt"}, r"\[task.path\]: .*latin1.txt is not UTF-8 text"),
        ({}, r"\[task.text\]: set exactly one of text, path, stdlib_modules \(none is set\)"),
        ({"text": "ab", "path": "x"}, r"\[task.path\]: set exactly one of .*got text, path"),
        ({"stdlib_modules": ["no_such_mod"]}, r"\[task.stdlib_modules\]: .*'no_such_mod'"),
        ({"text": SENTENCE, "window": 40}, r"\[task.window\]: the train split holds 34"),
        ({"text": SENTENCE * 9, "sample_prime": "hX"}, r"\[task.sample_prime\]: character 'X'"),
    ],
)
def test_clear_errors_name_the_file_and_key(tmp_path, task, match):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9".encode("latin-1"))
    exp, registry = experiment(tmp_path, task)
    with pytest.raises(ConfigError, match=match) as info:
        prepare(exp, registry)
    assert str(info.value).startswith(str(tmp_path / "exp.toml"))


def test_too_many_streams_for_the_train_text_is_a_batch_size_error(tmp_path):
    exp, registry = experiment(
        tmp_path, {"text": SENTENCE, "mode": "stateful", "window": 5}, train={"batch_size": 16}
    )
    with pytest.raises(ConfigError, match=r"\[train.batch_size\]: .* 2 steps per stream"):
        prepare(exp, registry)


def test_windows_too_large_for_memory_are_refused_before_allocation(tmp_path):
    text = distinct_text(100) * 400  # 40,000 characters; stride 1 -> ~32,000 windows of 100
    exp, registry = experiment(tmp_path, {"text": text, "window": 100, "stride": 1})
    with pytest.raises(ConfigError, match=r"\[task.stride\]: .* GiB; use a larger stride or"):
        prepare(exp, registry)


@pytest.mark.parametrize("mode", ["windows", "stateful"])
def test_both_modes_learn(tmp_path, mode):
    exp, registry = experiment(
        tmp_path,
        {"text": SENTENCE + "\n", "repeat": 6, "mode": mode, "window": 8, "stride": 2},
        train={"epochs": 15, "batch_size": 2},
    )
    session = prepare(exp, registry)
    history = fit(session, registry, RunInfo(exp, session.dataset, session.model))
    assert history[-1]["val_loss"] < 0.5 * history[0]["val_loss"]
