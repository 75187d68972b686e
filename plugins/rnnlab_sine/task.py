"""The article's first case, done properly: sin(t) sampled at `points` points over
[start, stop], cut into windows of `window` values that each predict the next value.

The series is split chronologically *before* windowing (train, then validation, then test), so
no window of one split shares a point with another split.
"""

import numpy as np

from rnnlab.plugin import ConfigError, Dataset, Demo, Option, Split, Task, param_name

OPTIONS = (
    Option("points", int, 1000, "samples of the series", gt=1),
    Option("start", float, 0.0, "first t"),
    Option("stop", float, 100.0, "last t"),
    Option("window", int, 10, "past values the model sees", gt=0),
    Option("noise", float, 0.0, "std of Gaussian noise added to the series", ge=0),
    Option("train_fraction", float, 0.8, "leading share of the series for training", gt=0, le=1),
    Option(
        "val_fraction", float, 0.1, "next share for validation (test gets the rest)", gt=0, le=1
    ),
    Option("forecast_steps", int, 50, "steps of the free-running forecast", gt=0),
)


def windows(series: np.ndarray, window: int) -> Split:
    """Every window of `window` values (time-major [T, N, 1]) and the value after it ([N, 1])."""
    n = len(series) - window
    idx = np.arange(window)[:, None] + np.arange(n)[None, :]
    return Split(series[idx][..., None], series[window:][:, None])


class SineTask(Task):
    def _segments(self, rng) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The series cut into train, val and test, and the times t of their points."""
        o = self.options
        if o["train_fraction"] + o["val_fraction"] >= 1:
            raise ConfigError(
                f"train_fraction + val_fraction must be < 1 to leave a test split, got "
                f"{o['train_fraction']} + {o['val_fraction']}",
                table="task",
                key="val_fraction",
            )
        if o["stop"] <= o["start"]:
            raise ConfigError(
                f"must be greater than start ({o['start']})", table="task", key="stop"
            )
        t = np.linspace(o["start"], o["stop"], o["points"])
        series = np.sin(t)
        if o["noise"]:
            series = series + rng.normal(0.0, o["noise"], series.shape)
        a = int(round(o["points"] * o["train_fraction"]))
        b = a + int(round(o["points"] * o["val_fraction"]))
        segments = {"train": series[:a], "val": series[a:b], "test": series[b:]}
        times = {"train": t[:a], "val": t[a:b], "test": t[b:]}
        for name, seg in segments.items():
            if len(seg) <= o["window"]:
                raise ConfigError(
                    f"window {o['window']} does not fit the {name} split ({len(seg)} points); "
                    f"use a smaller window or more points",
                    table="task",
                    key="window",
                )
        return segments, times

    def build(self, rng):
        segments, times = self._segments(rng)
        splits = {name: windows(seg, self.options["window"]) for name, seg in segments.items()}
        return Dataset(
            splits,
            input_size=1,
            output_size=1,
            loss="mse",
            target="last",
            meta={"segments": segments, "times": times},
        )

    def forecast(self, model, segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Free-running forecast: from the segment's first window, feed predictions back in."""
        w = self.options["window"]
        steps = min(self.options["forecast_steps"], len(segment) - w)
        history = list(segment[:w])
        for _ in range(steps):
            x = np.asarray(history[-w:], dtype=model.params[param_name("weight")].dtype)
            history.append(float(model.predict(x[:, None, None])[0, 0]))
        return np.asarray(history[w:]), segment[w : w + steps]

    def metrics(self, model, dataset, split):
        s = dataset.splits[split]
        mse = float(np.mean((model.predict(s.x) - s.y) ** 2))
        forecast, truth = self.forecast(model, dataset.meta["segments"][split])
        return {
            "mse": mse,
            "rmse": float(np.sqrt(mse)),
            "forecast_mse": float(np.mean((forecast - truth) ** 2)),
        }

    def demo(self, model, dataset, rng):
        segment = dataset.meta["segments"]["test"]
        w = self.options["window"]
        forecast, truth = self.forecast(model, segment)
        one_step = model.predict(dataset.splits["test"].x)[:, 0]
        rows = [
            [i + 1, f"{truth[i]:+.5f}", f"{one_step[i]:+.5f}", f"{forecast[i]:+.5f}"]
            for i in range(0, len(truth), max(1, len(truth) // 10))
        ]
        return Demo(
            f"test split: forecast from the first {w} true values",
            columns=["step", "true", "one-step", "free-running"],
            rows=rows,
        )

    def figure(self, model, dataset, fig):
        """The test segment: the true series, the one-step predictions (each from true values)
        and the free-running forecast (fed its own predictions); below, their absolute errors."""
        segment, t = dataset.meta["segments"]["test"], dataset.meta["times"]["test"]
        w = self.options["window"]
        forecast, truth = self.forecast(model, segment)
        one_step = model.predict(dataset.splits["test"].x)[:, 0]
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.4])
        top.axvspan(t[0], t[w - 1], color="0.88", label=f"first window ({w} true values)")
        top.plot(t, segment, color="black", lw=3, alpha=0.3, label="true series")
        top.plot(t[w:], one_step, "o", color="C0", ms=2.5, label="one-step prediction")
        top.plot(
            t[w : w + len(forecast)],
            forecast,
            color="C3",
            lw=1.4,
            ls="--",
            label=f"free-running forecast ({len(forecast)} steps)",
        )
        top.set_ylabel("value")
        fig.suptitle("sine, test split: true series vs predictions")
        top.legend(
            loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize="small", ncols=4, frameon=False
        )
        floor = np.finfo(float).tiny  # a zero error still has a place on the log axis
        bottom.plot(
            t[w:],
            np.maximum(np.abs(one_step - segment[w:]), floor),
            color="C0",
            lw=1,
            label="one-step",
        )
        bottom.plot(
            t[w : w + len(forecast)],
            np.maximum(np.abs(forecast - truth), floor),
            color="C3",
            lw=1,
            ls="--",
            label="free-running",
        )
        bottom.set_yscale("log")
        bottom.set_ylabel("|error|")
        bottom.set_xlabel("t")
        bottom.legend(loc="lower right", fontsize="small", ncols=2)
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
        return "forecast"
