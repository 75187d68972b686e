"""The series task: reading a CSV time series, chronological windows, train-only normalisation,
metrics against naive baselines in the data's units, missing values, and bad data."""

from __future__ import annotations

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
from rnnlab_series import scores
from tests.support.paths import ROOT

SPEC = Registry().task("series")


def write_csv(folder: Path, rows: list[str], name: str = "s.csv") -> Path:
    path = folder / name
    path.write_text("\n".join(rows) + "\n")
    return path


def yearly(folder: Path, n: int = 60, **columns) -> Path:
    """A CSV with a year column and columns of values (default: y = 10 + t^1.5 / 10)."""
    t = np.arange(n)
    columns = columns or {"y": 10 + t**1.5 / 10}
    header = ",".join(["year", *columns])
    lines = [
        ",".join([str(1900 + i), *(repr(float(v[i])) for v in columns.values())]) for i in range(n)
    ]
    return write_csv(folder, [header, *lines])


def build(folder: Path, seed: int = 0, **options):
    task = make_task(SPEC, {"path": "s.csv", **options}, TaskContext(folder))
    return task, task.build(np.random.default_rng(seed))


class Oracle:
    """A 'model' that returns the true next values (normalised as the task feeds them)."""

    def __init__(self, dataset, split):
        self.y = dataset.splits[split].y
        self.params = {"head.weight": np.zeros((1, 1))}

    def predict(self, x, target="last", lengths=None):
        return self.y


def test_windows_cut_chronologically_and_normalised_on_train_only(tmp_path):
    y = 10 + np.arange(60) ** 1.5 / 10
    yearly(tmp_path)
    _, data = build(tmp_path, window=5, train_fraction=0.5, val_fraction=0.25)
    mean, std = y[:30].mean(), y[:30].std()
    train, val, test = (data.splits[k] for k in ("train", "val", "test"))
    # train forecasts rows 5..29 from rows 0..28; val forecasts 30..44, its context reaching back
    assert train.x.shape == (5, 25, 1) and val.x.shape == (5, 15, 1) and test.x.shape[1] == 15
    np.testing.assert_allclose(train.x[:, 0, 0] * std + mean, y[:5])
    np.testing.assert_allclose(train.y[-1, 0] * std + mean, y[29])
    np.testing.assert_allclose(val.x[:, 0, 0] * std + mean, y[25:30])
    np.testing.assert_allclose(val.y[0, 0] * std + mean, y[30])
    np.testing.assert_allclose(test.y[-1, 0] * std + mean, y[59])
    assert data.saved["normalisation"]["input_mean"]["y"] == pytest.approx(mean)
    assert data.saved["split_lines"] == {"train": [2, 31], "val": [32, 46], "test": [47, 61]}


def test_perfect_model_scores_zero_and_baselines_are_in_the_data_units(tmp_path):
    t = np.arange(80)
    y = 100 + 10 * np.sin(2 * np.pi * t / 8) + t
    yearly(tmp_path, 80, y=y)
    task, data = build(tmp_path, window=8, season=8, horizon=3)
    for split in ("train", "val", "test"):
        m = task.metrics(Oracle(data, split), data, split)
        assert m["mae"] == pytest.approx(0, abs=1e-9) and m["mase"] == pytest.approx(0, abs=1e-9)
        starts = data.meta["starts"][split]
        truth = y[starts[:, None] + np.arange(3)]
        naive = y[starts - 1][:, None]
        assert m["naive_mae"] == pytest.approx(np.mean(np.abs(truth - naive)))
        seasonal = y[starts[:, None] + np.arange(3) - 8]  # one season back, for h < season
        assert m["seasonal_naive_mae"] == pytest.approx(np.mean(np.abs(truth - seasonal)))
        scale = np.mean(np.abs(y[8:56] - y[:48]))  # seasonal naive error over train rows 0..55
        assert m["naive_mase"] == pytest.approx(m["naive_mae"] / scale)
        smape = 100 * np.mean(2 * np.abs(truth - naive) / (np.abs(truth) + np.abs(naive)))
        assert m["naive_smape"] == pytest.approx(smape)


def test_relative_windows_give_back_exact_forecasts(tmp_path):
    yearly(tmp_path, 70)
    task, data = build(tmp_path, window=6, horizon=2, relative=True)
    assert task.metrics(Oracle(data, "test"), data, "test")["mae"] == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(data.splits["test"].x[-1], 0)  # each window less its last value


def test_seasonal_naive_reaches_back_whole_seasons():
    values = np.arange(40.0)[:, None]
    got = scores.seasonal_naive(values, np.array([20]), horizon=7, season=3)
    # h = 0,1,2 -> one season back (17,18,19); h = 3,4,5 -> two (17,18,19); h = 6 -> 3 (17)
    np.testing.assert_array_equal(got[0, :, 0], [17, 18, 19, 17, 18, 19, 17])
    assert scores.seasonal_reach(7, 3) == 9


def test_multivariate_inputs_and_several_targets(tmp_path):
    t = np.arange(50.0)
    yearly(tmp_path, 50, a=t, b=2 * t + 1, c=np.cos(t))
    task, data = build(tmp_path, window=4, horizon=3, columns=["c"], target=["a", "b"])
    assert data.input_size == 3 and data.output_size == 6
    assert data.saved["series"]["inputs"] == ["c", "a", "b"]
    assert data.saved["series"]["targets"] == ["a", "b"]
    m = task.metrics(Oracle(data, "val"), data, "val")
    assert m["rmse"] == pytest.approx(0, abs=1e-9)
    assert m["naive_mae"] == pytest.approx((2 + 4) / 2)  # a rises 1 a row, b 2: mean of h=1..3


def test_iso_dates_and_default_columns(tmp_path):
    rows = ["date,load,temp"] + [
        f"2020-01-{d:02d}T{h:02d}:00,{d + h},{h}" for d in range(1, 29) for h in (0, 12)
    ]
    write_csv(tmp_path, rows)
    _, data = build(tmp_path, window=4)
    assert data.saved["series"]["inputs"] == ["load", "temp"]
    assert data.saved["series"]["targets"] == ["load"]
    assert data.saved["series"]["first_time"] == "2020-01-01"
    assert data.saved["series"]["last_time"] == "2020-01-28T12:00:00"


def gappy(folder: Path) -> Path:
    rows = ["week,v"] + [f"{i},{'' if i in (3, 4, 9) else i * 2.0}" for i in range(40)]
    rows[12] = "11,NA"
    return write_csv(folder, rows)


def test_missing_values_are_an_error_naming_column_and_lines(tmp_path):
    gappy(tmp_path)
    with pytest.raises(ConfigError) as info:
        build(tmp_path, window=3)
    msg = str(info.value)
    assert info.value.key == "missing"
    assert "s.csv" in msg and "column 'v'" in msg and "4 missing" in msg
    assert "line(s) 5, 6, 11, 13" in msg and "interpolate" in msg


def test_missing_values_interpolated_or_dropped(tmp_path):
    gappy(tmp_path)
    _, data = build(tmp_path, window=3, missing="interpolate")
    values = data.meta["series"].values[:, 0]
    np.testing.assert_allclose(values, np.arange(40) * 2.0)  # linear data: filled exactly
    _, data = build(tmp_path, window=3, missing="drop")
    assert len(data.meta["series"].values) == 36
    assert 3 not in data.meta["series"].times and np.all(np.isfinite(data.splits["train"].x))


BAD = {
    "no such file": (None, "no such file"),
    "directory": ("DIR", "is a directory"),
    "encoding": (b"year,v\n1,2\n2,\xe93\n", "line 3, character 3, column 'v': not UTF-8"),
    "empty": ("", "is empty"),
    "no header": ("1,2\n2,3\n", "line 1 holds numbers"),
    "non-numeric": ("year,v\n1,2\n2,abc\n", "line 3, column 'v': 'abc' is not a number"),
    "bad time": ("year,v\n1,2\nlater,3\n", "line 3, column 'year': 'later' is not a time"),
    "backwards": (
        "year,v\n1,2\n3,3\n2,4\n",
        "line 4, column 'year': time '2' does not come after '3' on line 3",
    ),
    "repeated time": ("year,v\n1,2\n1,3\n", "line 3, column 'year': time '1' does not come"),
    "mixed times": (
        "year,v\n1,2\n2020-01-01,3\n",
        "line 3, column 'year': '2020-01-01' is not the same kind of time",
    ),
    "time zones": (
        "year,v\n2020-01-01T00:00,2\n2020-01-02T00:00+01:00,3\n",
        "line 3, column 'year': '2020-01-02T00:00+01:00' is not the same kind",
    ),
    "ragged row": ("year,v\n1,2\n2,3,4\n", "line 3 has 3 fields"),
    "too few rows": (
        "year,v\n" + "".join(f"{i},{i}\n" for i in range(12)),
        "12 data rows are too few: the train split (lines 2-9, 8 rows) needs at "
        "least 11 for window 10 + horizon 1",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_data_names_file_line_and_column(tmp_path, case):
    content, words = BAD[case]
    path = tmp_path / "s.csv"
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        build(tmp_path, window=10)
    assert info.value.table == "task" and info.value.key == "path"
    assert str(path) in str(info.value) and words in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "options, key, words",
    [
        ({"columns": ["vv"]}, "columns", "no column 'vv'"),
        ({"target": ["x"]}, "target", "no column 'x'"),
        ({"time_column": "yr"}, "time_column", "did you mean 'year'"),
        ({"columns": ["year"]}, "columns", "is the time column"),
        ({"path": ""}, "path", "set the CSV file"),
        ({"train_fraction": 0.9}, "val_fraction", "must be < 1"),
    ],
)
def test_options_that_do_not_fit_the_file(tmp_path, options, key, words):
    yearly(tmp_path, 40, v=np.arange(40.0))
    with pytest.raises(ConfigError) as info:
        build(tmp_path, window=3, **options)
    assert info.value.key == key and words in str(info.value), str(info.value)


def test_constant_target_is_refused(tmp_path):
    yearly(tmp_path, 40, v=np.ones(40))
    with pytest.raises(ConfigError, match="does not change over the train split"):
        build(tmp_path, window=3)


def test_conformance_multivariate_multistep(tmp_path):
    t = np.arange(120.0)
    yearly(tmp_path, 120, a=np.sin(t / 3), b=np.cos(t / 5))
    check_task(
        SPEC,
        {"path": "s.csv", "window": 6, "horizon": 3, "season": 4, "target": ["a", "b"]},
        context=TaskContext(tmp_path),
        seeds=(0,),
    )
    check_task(
        SPEC,
        {"path": "s.csv", "window": 6, "relative": True},
        context=TaskContext(tmp_path),
        seeds=(0,),
    )


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(30, 90),
    window=st.integers(1, 8),
    horizon=st.integers(1, 4),
    season=st.integers(1, 6),
    train=st.floats(0.4, 0.7),
    val=st.floats(0.1, 0.25),
)
def test_every_window_forecasts_only_its_own_split(
    tmp_path_factory, rows, window, horizon, season, train, val
):
    folder = tmp_path_factory.mktemp("prop")
    y = np.sin(np.arange(rows) / 2.0) + np.arange(rows) / 10
    yearly(folder, rows, y=y)
    try:
        task, data = build(
            folder,
            window=window,
            horizon=horizon,
            season=season,
            train_fraction=train,
            val_fraction=val,
        )
    except ConfigError as exc:
        assert "too few" in str(exc)
        return
    a = int(round(rows * train))
    b = a + int(round(rows * val))
    bounds = {"train": (0, a), "val": (a, b), "test": (b, rows)}
    for name, (lo, hi) in bounds.items():
        s = data.meta["starts"][name]
        assert s.min() >= max(lo, window, scores.seasonal_reach(horizon, season))
        assert s.max() + horizon <= hi  # every target row lies in this split
        x = data.splits[name].x[:, :, 0] * data.saved["normalisation"]["input_std"]["y"]
        x += data.saved["normalisation"]["input_mean"]["y"]
        np.testing.assert_allclose(x[-1], y[s - 1], atol=1e-12)  # context, then targets
        m = task.metrics(Oracle(data, name), data, name)
        assert m["mae"] == pytest.approx(0, abs=1e-9) and np.isfinite(m["naive_mase"])


def test_shipped_weekly_series_gaps_message_and_fill(tmp_path):
    """The shipped weekly CO2 series: one message naming the gaps, or a fill that trains."""
    exp = ROOT / "experiments" / "co2_weekly.toml"
    result = CliRunner().invoke(
        main, ["run", str(exp), "--out", str(tmp_path), "--set", "task.missing=error"]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "co2_weekly.csv: column 'co2' has 59 missing value(s), on line(s) 8, 11, 12" in " ".join(
        result.output.split()
    )
    for missing, rows in (("interpolate", 2284), ("drop", 2284 - 59)):
        task = make_task(
            SPEC,
            {
                "path": "data/co2_weekly.csv",
                "missing": missing,
                "window": 52,
                "season": 52,
                "horizon": 4,
                "relative": True,
            },
            TaskContext(ROOT / "experiments"),
        )
        data = task.build(np.random.default_rng(0))
        assert data.saved["series"]["rows"] == rows
        assert all(
            np.all(np.isfinite(s.x)) and np.all(np.isfinite(s.y)) for s in data.splits.values()
        )


@pytest.mark.slow
def test_sunspots_run_end_to_end(tmp_path):
    exp = ROOT / "experiments" / "sunspots.toml"
    result = CliRunner().invoke(
        main, ["run", str(exp), "--out", str(tmp_path), "--set", "train.epochs=2", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "naive_mae" in result.output and "seasonal_naive_mase" in result.output


@pytest.mark.parametrize("task", ["series", "sequences"])
def test_docs_list_every_option_with_its_default(task):
    """docs/your-data.md's option tables name every option of both tasks and its default."""
    text = (ROOT / "docs" / "your-data.md").read_text()
    section = text.split(f"## `{task}`")[1].split("\n## ")[0]
    for option in Registry().task(task).options:
        row = next((r for r in section.splitlines() if r.startswith(f"| `{option.name}` |")), None)
        assert row is not None, f"{task}: option {option.name!r} is not in the table"
        default = option.default
        if isinstance(default, bool):
            shown = str(default).lower()
        elif isinstance(default, str):
            shown = f'`"{default}"`' if default else ""
        else:
            shown = str(default) if not isinstance(default, list) else ""
        assert shown in row, f"{task}: option {option.name!r}: default {shown} not in {row}"


@pytest.mark.parametrize("horizon", [1, 3])
def test_forecast_figure_is_drawn(tmp_path, horizon):
    pytest.importorskip("matplotlib")
    from rnnlab.display import figures as plots

    t = np.arange(80.0)
    yearly(tmp_path, 80, y=np.sin(t / 3) + t / 20)
    task, data = build(tmp_path, window=6, horizon=horizon, season=5)
    path = plots.task_figure(task, Oracle(data, "test"), data, tmp_path)
    assert path.name == "forecast.png" and path.stat().st_size > 8000
