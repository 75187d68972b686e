"""check_task accepts a good task and names what is wrong with a bad one."""

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.registry.manager import Registry
from rnnlab.specs import Dataset, Option, Split, Task, TaskSpec
from rnnlab.testing import check_task


class SignOfSum(Task):
    """Is the sum of a sequence of Gaussian values positive? Classification on the last step."""

    leak = False
    alias = False
    shape_bug = False
    nondeterministic = False
    bad_metric = False

    def build(self, rng):
        n, T = self.options["n"], self.options["length"]
        if self.nondeterministic:
            rng = np.random.default_rng()
        values = rng.normal(size=(T, 3 * n))
        x = values[..., None]
        y = (values.sum(axis=0) > 0).astype(np.int64)
        splits = {
            name: Split(x[:, i * n : (i + 1) * n], y[i * n : (i + 1) * n])
            for i, name in enumerate(("train", "val", "test"))
        }
        if self.leak:  # the test split's first half copied from train
            test, train, h = splits["test"], splits["train"], n // 2
            test.x[:, :h], test.y[:h] = train.x[:, :h], train.y[:h]
        if self.alias:
            splits["test"] = splits["train"]
        if self.shape_bug:
            splits["val"] = Split(splits["val"].x, splits["val"].y[:, None])
        return Dataset(splits, input_size=1, output_size=2, loss="xent", target="last")

    def metrics(self, model, dataset, split):
        s = dataset.splits[split]
        if self.bad_metric:
            return {"nan": float("nan")}
        return {"accuracy": float(np.mean(model.predict(s.x).argmax(-1) == s.y))}


OPTIONS = (Option("n", int, 64, gt=0), Option("length", int, 3, gt=0))


def spec_of(cls):
    return TaskSpec("sign", cls, OPTIONS)


def variant(**flags):
    return type("Variant", (SignOfSum,), flags)


def test_a_good_task_passes():
    check_task(spec_of(SignOfSum), {"n": 64})


def test_a_bare_factory_takes_options_as_given():
    check_task(SignOfSum, {"n": 64, "length": 3})


def test_options_are_validated_against_the_spec():
    with pytest.raises(ConfigError, match="unknown key; did you mean 'length'"):
        check_task(spec_of(SignOfSum), {"lenght": 3})


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"leak": True}, "50% of the test examples also appear in train"),
        ({"alias": True}, "splits 'train' and 'test' share memory"),
        ({"shape_bug": True}, r"split 'val': y must have shape \(64,\)"),
        ({"nondeterministic": True}, "differs between two builds with one seed"),
        ({"bad_metric": True}, "metric 'nan' on train is nan"),
    ],
)
def test_a_broken_task_is_named(flags, message):
    with pytest.raises(AssertionError, match=message):
        check_task(spec_of(variant(**flags)), {"n": 64})


def test_a_task_with_nothing_to_learn_fails():
    class OneClass(SignOfSum):  # a single class: the loss is 0 from the start
        def build(self, rng):
            d = super().build(rng)
            for s in d.splits.values():
                s.y[...] = 0
            d.output_size = 1
            return d

    with pytest.raises(AssertionError, match="did not lower the train loss"):
        check_task(spec_of(OneClass), {"n": 64}, epochs=2, max_examples=8)


def test_non_finite_targets_are_named():
    class NaNTargets(SignOfSum):
        def build(self, rng):
            d = super().build(rng)
            d.loss, d.output_size = "mse", 1
            d.splits = {k: Split(s.x, np.full((len(s), 1), np.nan)) for k, s in d.splits.items()}
            return d

    with pytest.raises(AssertionError, match="y holds NaN or inf"):
        check_task(spec_of(NaNTargets), {"n": 64})


def test_registered_tasks_are_found_through_the_registry():
    assert "sine" in Registry().tasks


class Bits(SignOfSum):
    """Parity of 3 bits: only 8 distinct examples, so every split repeats train's."""

    def build(self, rng):
        d = super().build(rng)
        for s in d.splits.values():
            s.x[...] = s.x > 0
            s.y[...] = s.x[..., 0].sum(axis=0) % 2
        return d


def test_repeating_examples_are_not_taken_for_a_leak():
    check_task(spec_of(Bits), {"n": 64}, epochs=30)


def test_max_shared_checks_repeating_examples_when_given():
    with pytest.raises(AssertionError, match="of the val examples also appear in train"):
        check_task(spec_of(Bits), {"n": 64}, max_shared=0.5)


class Stream(SignOfSum):
    """A stateful dataset: one stream per split, a target at every step."""

    streams = 1

    def build(self, rng):
        def stream(n):
            x = rng.normal(size=(n, self.streams, 1))
            return Split(x, (np.cumsum(x, axis=0) > 0).astype(np.int64)[..., 0])

        return Dataset(
            {"train": stream(300), "val": stream(50), "test": stream(50)},
            input_size=1,
            output_size=2,
            loss="xent",
            target="every",
            chunk_length=10,
        )

    def metrics(self, model, dataset, split):
        return {}


def test_a_stateful_task_passes():
    check_task(spec_of(Stream), {})


def test_a_stateful_task_needs_one_stream_per_split():
    with pytest.raises(AssertionError, match="one stream"):
        check_task(spec_of(variant_of(Stream, streams=2)), {})


def variant_of(cls, **flags):
    return type("Variant", (cls,), flags)
