"""Forecasting a CSV time series of one's own: a time column, numeric columns as inputs, one or
more of them as targets, the next ``horizon`` values predicted at once (direct multi-step).

The rows are cut chronologically into train, validation and test *before* windowing: a window
belongs to the split that holds the rows it forecasts, and its context of ``window`` past rows
may reach back into the split before (values known at that time, as in a rolling-origin
evaluation), so no forecast target is ever seen in training. Every column is standardised with
the mean and standard deviation of the train rows only (with ``relative``, each window is taken
less its last value, and the changes are scaled by their spread in the train windows). Every
reported metric is in the data's own units, beside the same metrics for a naive (last value)
and, with ``season > 1``, a seasonal-naive forecast.
"""

from __future__ import annotations

import numpy as np

from rnnlab.plugin import (
    ConfigError,
    Dataset,
    Demo,
    Option,
    Split,
    Task,
    column_index,
    data_error,
)

from . import scores
from .table import Series, fill_missing, read_series

OPTIONS = (
    Option("path", str, "", "the CSV file (header row), relative to the experiment file"),
    Option(
        "time_column",
        str,
        "",
        "the column of times, required to increase: numbers (e.g. "
        "years) or ISO 8601 dates (default: the first column)",
    ),
    Option(
        "columns", list, [], "input columns (default: every column but the time column)", item=str
    ),
    Option(
        "target",
        list,
        [],
        "columns to forecast (default: the first input column); a "
        "target that is not an input column is added to the inputs",
        item=str,
    ),
    Option("window", int, 24, "past rows the model sees", gt=0),
    Option("horizon", int, 1, "rows forecast at once from each window", gt=0),
    Option(
        "season",
        int,
        1,
        "rows per season, for the seasonal-naive baseline and the MASE scale (1: no season)",
        ge=1,
    ),
    Option(
        "relative",
        bool,
        False,
        "feed and forecast each window's values less its last "
        "value (the change since then), scaled on the train windows: for a series that "
        "trends out of the range of its train split",
    ),
    Option(
        "missing",
        str,
        "error",
        "missing values (empty cells, NA, NaN): an error naming "
        "them, linear interpolation in time, or drop their rows",
        choices=("error", "interpolate", "drop"),
    ),
    Option("train_fraction", float, 0.7, "leading share of the rows for training", gt=0, le=1),
    Option(
        "val_fraction", float, 0.15, "next share for validation (test gets the rest)", gt=0, le=1
    ),
    Option("demo_rows", int, 12, "test forecasts shown after training", ge=0),
)
SPLITS = ("train", "val", "test")


class SeriesTask(Task):
    def read(self) -> tuple[Series, list[int]]:
        """The series with missing values dealt with, and the indices of the target columns."""
        o = self.options
        if not o["path"]:
            raise ConfigError(
                "set the CSV file to read (relative to the experiment file)",
                table="task",
                key="path",
            )
        path = self.context.base_dir / o["path"]
        columns = list(o["columns"])
        if columns:
            columns += [t for t in o["target"] if t not in columns]
        for i, name in enumerate(columns):
            if name in columns[:i]:
                raise ConfigError(f"column {name!r} is listed twice", table="task", key="columns")
        series = fill_missing(read_series(path, o["time_column"], columns), o["missing"])
        names = series.names
        for i, name in enumerate(o["target"]):
            if name in o["target"][:i]:
                raise ConfigError(f"column {name!r} is listed twice", table="task", key="target")
            column_index(path, names, name, "target")
        targets = [names.index(t) for t in (o["target"] or names[:1])]
        return series, targets

    def cuts(self, series: Series) -> tuple[int, int, int]:
        """The first row each window may forecast, and where val and test start."""
        o, rows = self.options, len(series.values)
        if o["train_fraction"] + o["val_fraction"] >= 1:
            raise ConfigError(
                f"train_fraction + val_fraction must be < 1 to leave a test split, got "
                f"{o['train_fraction']} + {o['val_fraction']}",
                table="task",
                key="val_fraction",
            )
        a = int(round(rows * o["train_fraction"]))
        b = a + int(round(rows * o["val_fraction"]))
        first = max(o["window"], scores.seasonal_reach(o["horizon"], o["season"]))
        need = {"train": first + o["horizon"], "val": o["horizon"], "test": o["horizon"]}
        for name, lo, hi in (("train", 0, a), ("val", a, b), ("test", b, rows)):
            if hi - lo < need[name]:
                span = f"lines {series.lines[lo]}-{series.lines[hi - 1]}" if hi > lo else "no rows"
                why = (
                    f"window {o['window']} + horizon {o['horizon']}"
                    if name == "train"
                    else f"horizon {o['horizon']}"
                )
                if name == "train" and first > o["window"]:
                    why = (
                        f"{first} past rows for the seasonal-naive baseline (season "
                        f"{o['season']}) + horizon {o['horizon']}"
                    )
                raise data_error(
                    series.path,
                    f"{rows} data rows are too few: the {name} split "
                    f"({span}, {hi - lo} rows) needs at least "
                    f"{need[name]} for {why}; use more rows or a "
                    f"smaller window or horizon",
                )
        return first, a, b

    def build(self, rng: np.random.Generator) -> Dataset:
        o = self.options
        series, targets = self.read()
        first, a, b = self.cuts(series)
        values = series.values
        scale = scores.mase_scale(values[:a, targets], o["season"])
        if np.any(scale <= 0):
            name = series.names[targets[int(np.argmax(scale <= 0))]]
            raise data_error(
                series.path,
                f"column {name!r} does not change over the train "
                f"split (lines {series.lines[0]}-{series.lines[a - 1]})"
                f": there is nothing to forecast, and MASE is "
                f"undefined",
            )
        W, H, K = o["window"], o["horizon"], len(targets)
        bounds = {
            "train": (first, a),
            "val": (max(first, a), b),
            "test": (max(first, b), len(values)),
        }
        raw, starts, offsets = {}, {}, {}
        for name, (lo, hi) in bounds.items():
            s = np.arange(lo, hi - H + 1)  # each window's first forecast row
            past = s[None, :] + np.arange(-W, 0)[:, None]  # [W, N]
            ahead = s[:, None] + np.arange(H)[None, :]  # [N, H]
            x, y = values[past], values[ahead][:, :, targets]
            if o["relative"]:  # each window less its last value: the change since then
                x = x - values[s - 1][None]
                offsets[name] = values[s - 1][:, None, targets]
                y = y - offsets[name]
            raw[name], starts[name] = (x, y), s
        if o["relative"]:  # scales of the changes in the train windows
            x_mean, x_std = np.zeros(len(series.names)), raw["train"][0].std(axis=(0, 1))
            y_mean, y_std = np.zeros(K), raw["train"][1].std(axis=(0, 1))
        else:  # mean and scale of the train rows
            x_mean, x_std = values[:a].mean(axis=0), values[:a].std(axis=0)
            y_mean, y_std = x_mean[targets], x_std[targets]
            offsets = {name: np.zeros((1, 1, K)) for name in bounds}
        x_std = np.where(x_std > 0, x_std, 1.0)  # a constant column stays constant
        y_std = np.where(y_std > 0, y_std, 1.0)
        splits = {
            name: Split((x - x_mean) / x_std, ((y - y_mean) / y_std).reshape(len(y), H * K))
            for name, (x, y) in raw.items()
        }
        names = series.names
        saved = {
            "series": {
                "path": str(series.path),
                "rows": len(values),
                "time_column": series.time_name,
                "inputs": names,
                "targets": [names[t] for t in targets],
                "first_time": series.time_text(0),
                "last_time": series.time_text(-1),
                "missing": o["missing"],
            },
            "split_lines": {
                name: [int(series.lines[lo]), int(series.lines[hi - 1])]
                for name, (lo, hi) in (
                    ("train", (0, a)),
                    ("val", (a, b)),
                    ("test", (b, len(values))),
                )
            },
            "normalisation": {
                "of": "change since each window's last row" if o["relative"] else "rows",
                "input_mean": dict(zip(names, x_mean.tolist(), strict=True)),
                "input_std": dict(zip(names, x_std.tolist(), strict=True)),
                "target_mean": dict(zip([names[t] for t in targets], y_mean.tolist(), strict=True)),
                "target_std": dict(zip([names[t] for t in targets], y_std.tolist(), strict=True)),
            },
            "mase_scale": dict(zip([names[t] for t in targets], scale.tolist(), strict=True)),
        }
        meta = {
            "series": series,
            "targets": targets,
            "starts": starts,
            "scale": scale,
            "offsets": offsets,
            "y_mean": y_mean,
            "y_std": y_std,
        }
        return Dataset(
            splits,
            input_size=len(names),
            output_size=H * K,
            loss="mse",
            target="last",
            meta=meta,
            saved=saved,
        )

    # -- scoring -----------------------------------------------------------------------------
    def forecasts(self, model, dataset: Dataset, split: str) -> dict[str, np.ndarray]:
        """The truth, the model's forecast and the baselines, ``[windows, horizon, targets]``,
        in the data's own units."""
        m, o = dataset.meta, self.options
        H, K = o["horizon"], len(m["targets"])
        s = dataset.splits[split]
        values = m["series"].values[:, m["targets"]]
        starts = m["starts"][split]
        model_out = model.predict(s.x).reshape(len(starts), H, K)
        out = {
            "truth": values[starts[:, None] + np.arange(H)[None, :]],
            "model": (model_out.astype(float) * m["y_std"] + m["y_mean"] + m["offsets"][split]),
            "naive": scores.naive(values, starts, H),
        }
        if o["season"] > 1:
            out["seasonal_naive"] = scores.seasonal_naive(values, starts, H, o["season"])
        return out

    def metrics(self, model, dataset, split):
        f = self.forecasts(model, dataset, split)
        scale = dataset.meta["scale"]
        result = scores.errors(f["model"], f["truth"], scale)
        for name in scores.BASELINES:
            if name in f:
                result.update(
                    {f"{name}_{k}": v for k, v in scores.errors(f[name], f["truth"], scale).items()}
                )
        return result

    def demo(self, model, dataset, rng):
        k = self.options["demo_rows"]
        if k == 0:
            return None
        f = self.forecasts(model, dataset, "test")
        series, starts = dataset.meta["series"], dataset.meta["starts"]["test"]
        target = series.names[dataset.meta["targets"][0]]
        picks = np.unique(np.linspace(0, len(starts) - 1, min(k, len(starts))).round().astype(int))
        baselines = [b for b in scores.BASELINES if b in f]
        rows = [
            [
                series.time_text(int(starts[i])),
                f"{f['truth'][i, 0, 0]:.5g}",
                f"{f['model'][i, 0, 0]:.5g}",
                *(f"{f[b][i, 0, 0]:.5g}" for b in baselines),
            ]
            for i in picks
        ]
        return Demo(
            f"test split: next-step forecasts of {target!r} ({len(picks)} of {len(starts)})",
            columns=["time", "true", "model", *baselines],
            rows=rows,
        )

    def figure(self, model, dataset, fig):
        """The test split of the first target: the truth, the model's next-step forecasts and
        the naive one; with horizon > 1, whole forecasts from a few origins; below, |error|."""
        f = self.forecasts(model, dataset, "test")
        series, starts = dataset.meta["series"], dataset.meta["starts"]["test"]
        target = series.names[dataset.meta["targets"][0]]
        H = self.options["horizon"]
        times = series.times
        t = [times[i] for i in starts]
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.4])
        lo = max(int(starts[0]) - self.options["window"], 0)
        hi = int(starts[-1]) + H
        top.plot(
            times[lo:hi],
            series.values[lo:hi, dataset.meta["targets"][0]],
            color="black",
            lw=2.5,
            alpha=0.3,
            label="true series",
        )
        top.plot(t, f["model"][:, 0, 0], "o-", color="C0", ms=2.5, lw=0.8, label="model, next step")
        top.plot(t, f["naive"][:, 0, 0], color="C1", lw=0.9, ls=":", label="naive, next step")
        if H > 1:
            for n, i in enumerate(np.linspace(0, len(starts) - 1, 4).round().astype(int)):
                top.plot(
                    times[starts[i] : starts[i] + H],
                    f["model"][i, :, 0],
                    color="C3",
                    lw=1.4,
                    ls="--",
                    label=f"model, {H} steps at once" if n == 0 else None,
                )
        top.set_ylabel(target)
        fig.suptitle(f"series, test split: {target!r} vs forecasts")
        top.legend(
            loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize="small", ncols=4, frameon=False
        )
        bottom.plot(
            t, np.abs(f["model"][:, 0, 0] - f["truth"][:, 0, 0]), color="C0", lw=1, label="model"
        )
        bottom.plot(
            t,
            np.abs(f["naive"][:, 0, 0] - f["truth"][:, 0, 0]),
            color="C1",
            lw=1,
            ls=":",
            label="naive",
        )
        bottom.set_ylabel("|error|, next step")
        bottom.set_xlabel(series.time_name)
        bottom.legend(loc="upper right", fontsize="small", ncols=2)
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
        return "forecast"
