"""The [sweep] table: expansion into variants, and errors that name the file, table and key."""

from __future__ import annotations

import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.hookspecs import hookimpl
from rnnlab.registry.manager import Registry
from rnnlab.specs import Backend, BackendSpec
from rnnlab.sweep import build_plan
from tests.support.sweeps import write_sweep


@pytest.fixture(scope="module")
def registry():
    return Registry()


def plan_of(tmp_path, registry, sweep: str):
    path = write_sweep(tmp_path, sweep)
    return build_plan(read_toml(path), registry, source=path)


def test_grid_times_variants_times_seeds(tmp_path, registry):
    plan = plan_of(
        tmp_path,
        registry,
        """
        seeds = [3, 4]
        "model.hidden_size" = [4, 8]
        "train.learning_rate" = [0.01, 0.001]
        [[sweep.variants]]
        "train.optimizer" = "sgd"
        [[sweep.variants]]
        "train.optimizer" = "adam"
    """,
    )
    assert len(plan.variants) == 8 and len(plan.runs) == 16
    first, last = plan.variants[0], plan.variants[-1]
    assert first.overrides == {
        "train.optimizer": "sgd",
        "model.hidden_size": 4,
        "train.learning_rate": 0.01,
    }
    assert last.overrides == {
        "train.optimizer": "adam",
        "model.hidden_size": 8,
        "train.learning_rate": 0.001,
    }
    assert first.config["model"]["hidden_size"] == 4 and "seed" not in first.config["experiment"]
    assert first.label == "optimizer=sgd hidden_size=4 learning_rate=0.01"
    assert plan.runs[0].run == "v00_optimizer-sgd_hidden_size-4_learning_rate-0.01_seed-3"
    assert {r.seed for r in plan.runs} == {3, 4}
    assert len({r.run for r in plan.runs}) == 16
    job = plan.jobs(tmp_path)[1]
    assert job.raw["experiment"]["seed"] == 4 and job.raw["model"]["hidden_size"] == 4


def test_unquoted_dotted_keys_mean_the_same(tmp_path, registry):
    quoted = plan_of(tmp_path, registry, '"model.hidden_size" = [4, 8]\n')
    nested = plan_of(tmp_path, registry, "model.hidden_size = [4, 8]\n")
    assert quoted.fingerprint == nested.fingerprint
    assert quoted.seeds == [0]  # the experiment's own seed


def test_no_grid_is_one_variant_over_seeds(tmp_path, registry):
    plan = plan_of(tmp_path, registry, "seeds = [0, 1, 2]\n")
    assert [v.label for v in plan.variants] == ["base"] and len(plan.runs) == 3


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        (
            '"model.hiden_size" = [4, 8]\n',
            "[sweep.\"model.hiden_size\"]: value 4: unknown key; did you mean 'hidden_size'?",
        ),
        ('"model.hidden_size" = [4, -1]\n', '[sweep."model.hidden_size"]: value -1: must be > 0'),
        ('"train.backend" = ["numpy", "nump"]\n', "did you mean 'numpy'?"),
        ('"model.dtype" = ["float64", "float16"]\n', "value 'float16': 'float16' is not valid"),
        ('"model.hidden_size" = 4\n', "must be a non-empty list of values to try"),
        ('"model.hidden_size" = [4, 4]\n', "lists 4 twice"),
        ('"experiment.seed" = [1, 2]\n', "seeds = [...]"),
        ('"modle.hidden_size" = [4]\n', "is not TABLE.KEY"),
        ("seed = [1, 2]\n", "unknown key 'seed'; did you mean 'seeds'?"),
        ("seeds = [1, -2]\n", "[sweep.seeds]: must be a non-empty list of integers >= 0"),
        ("seeds = [1, 1]\n", "lists a seed twice"),
        (
            '[[sweep.variants]]\n"train.optimizer" = "sgdd"\n',
            "[sweep.variants]: variant 1: train.optimizer = 'sgdd': 'sgdd' is not valid; "
            "did you mean 'sgd'?",
        ),
        (
            '"model.hidden_size" = [4]\n[[sweep.variants]]\n"model.hidden_size" = 8\n',
            "also a grid axis",
        ),
        (
            '[[sweep.variants]]\n"model.hidden_size" = 8\n'
            "[[sweep.variants]]\nmodel.hidden_size = 8\n",
            "variants v00 and v01 (hidden_size=8) are the same experiment",
        ),
    ],
)
def test_errors_name_the_file_and_the_sweep_key(tmp_path, registry, sweep, expected):
    with pytest.raises(ConfigError) as info:
        plan_of(tmp_path, registry, sweep)
    assert expected in str(info.value)
    assert str(tmp_path / "tiny.toml") in str(info.value)


def test_base_errors_are_reported_as_usual(tmp_path, registry):
    path = write_sweep(tmp_path, '"model.hidden_size" = [4]\n')
    path.write_text(path.read_text().replace("epochs = 2", "epochs = 0"))
    with pytest.raises(ConfigError, match=r"\[train.epochs\]: must be > 0"):
        build_plan(read_toml(path), registry, source=path)


def test_a_single_run_refuses_a_sweep_file(tmp_path, registry):
    path = write_sweep(tmp_path, '"model.hidden_size" = [4]\n')
    with pytest.raises(
        ConfigError,
        match=r"\[sweep\]: this file describes a sweep: run it with "
        r"`rnnlab sweep`",
    ):
        build_experiment(read_toml(path), registry, source=path)


def test_misspelt_sweep_table_suggests_it(tmp_path, registry):
    path = tmp_path / "x.toml"
    path.write_text('[task]\nname = "sine"\n[sweeps]\nseeds = [1]\n')
    with pytest.raises(ConfigError, match="did you mean 'sweep'"):
        build_experiment(read_toml(path), registry, source=path)


class RnnOnly:
    """A plugin with a backend that has only the rnn cell."""

    @staticmethod
    @hookimpl
    def register_backends():
        return [BackendSpec("rnn-only", lambda: type("RnnOnly", (Backend,), {})(), "rnn only")]


def test_a_cell_the_backend_lacks_is_refused_before_anything_runs(tmp_path):
    registry = Registry()
    registry.add_module(RnnOnly, "rnn-only")
    with pytest.raises(
        ConfigError,
        match=r"\[sweep.\"model.cell\"\]: value 'gru': "
        r"backend 'rnn-only' does not support cell 'gru'",
    ):
        plan_of(
            tmp_path, registry, '"train.backend" = ["rnn-only"]\n"model.cell" = ["rnn", "gru"]\n'
        )


def test_an_error_across_keys_names_the_variant(tmp_path, registry):
    path = write_sweep(tmp_path, '"model.cell" = ["lstm", "gru"]\n')
    path.write_text(
        path.read_text().replace("hidden_size = 4", "hidden_size = 4\nforget_bias = 1.0")
    )
    with pytest.raises(
        ConfigError,
        match=r"applies to cell 'lstm' only, but cell is 'gru'.*"
        r"\(in the variant with cell=gru\)",
    ):
        build_plan(read_toml(path), registry, source=path)


def test_a_grid_beyond_the_limit_is_refused_before_any_variant_is_built(
    tmp_path, registry, monkeypatch
):
    from rnnlab.sweep import plan as planning

    def never(*args, **kwargs):
        raise AssertionError("a variant was built before the size was checked")

    monkeypatch.setattr(planning, "_validate", never)
    axis = ", ".join(str(i) for i in range(100))
    sweep = "\n".join(
        f'"{k}" = [{axis}]' for k in ("task.window", "model.hidden_size", "train.batch_size")
    )
    with pytest.raises(ConfigError) as info:
        plan_of(tmp_path, registry, f"seeds = [1, 2]\n{sweep}")
    assert info.value.table == "sweep"
    assert "100 (task.window) x 100 (model.hidden_size) x 100 (train.batch_size) x 2 seeds" in str(
        info.value
    )
    assert f"= 2,000,000 runs, more than the {planning.MAX_RUNS:,} a sweep may hold" in str(
        info.value
    )


def test_a_repeated_value_is_found_on_a_long_axis(tmp_path, registry):
    from rnnlab.sweep.plan import first_repeat, parse_sweep_table

    assert first_repeat([1, 2.0, "a", {"x": [1]}, 2]) == 2  # as == compares: 2 == 2.0
    assert first_repeat([{"x": 1, "y": 2}, {"y": 2, "x": 1}]) == {"x": 1, "y": 2}
    assert first_repeat([True, 1, "1", [1], float("nan"), float("nan")]) is None
    values = [i * 0.5 for i in range(200_000)]  # quadratic comparisons would take hours
    grid, _, _ = parse_sweep_table({"train.learning_rate": values}, "s.toml")
    assert len(grid["train.learning_rate"]) == 200_000
    with pytest.raises(ConfigError, match=r"lists 1000 twice"):
        parse_sweep_table({"train.learning_rate": [*values, 1000]}, "s.toml")
