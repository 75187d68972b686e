"""What a search shows: each trial as it ends, then the best trial and its run directories, the
best trials in a table, which parameters mattered (fANOVA and PED-ANOVA, named), and figures."""

from __future__ import annotations

import importlib.util
import threading
import warnings

from rich.console import Console
from rich.table import Table

from ..display.terminal import fmt
from ..executors.base import RunResult
from .driver import SearchOutcome, count
from .study import optuna
from .trial import read_record, run_name, trial_name

TOP = 10
FIGURES = "figures"


class SearchDisplay:
    """One line per trial as it ends (``started`` may come from another thread)."""

    def __init__(self, console: Console):
        self.console, self.lock, self.ended = console, threading.Lock(), 0
        self.target = 0

    def begin(self, outcome: SearchOutcome, done: int) -> None:
        self.target, self.ended = outcome.target, done
        s = outcome.plan.settings
        self.console.print(
            f"search of {outcome.target} trials ({s.sampler} sampler, pruner {s.pruner}, "
            f"{len(s.seeds)} seed{'s' * (len(s.seeds) > 1)} each, {s.direction} {s.metric}) "
            f"in [bold]{outcome.directory}[/bold] on {outcome.executor}"
            + (f"; {done} done before" if done else ""),
            highlight=False,
        )

    def started(self, job) -> None: ...

    def finished(self, result: RunResult) -> None:
        with self.lock:
            record = result.summary or {}
            if result.status == "interrupted":
                line = f"{result.run} interrupted: continues when the search is run again"
            else:
                self.ended += result.status != "failed"
                value = record.get("value")
                what = {"finished": f"value {fmt(value)}", "stopped": "pruned"}.get(
                    result.status, f"failed: {result.error}"
                )
                params = " ".join(f"{k}={_short(v)}" for k, v in record.get("params", {}).items())
                line = f"[{self.ended}/{self.target}] {result.run} {what}  {params}"
            self.console.print(line, highlight=False, markup=False)


def _short(value) -> str:
    return fmt(value) if isinstance(value, float) else str(value)


def trials_of(outcome: SearchOutcome) -> list[dict]:
    """Every trial of the study, by number, with its record's values where it has one."""
    out = []
    for t in outcome.study.get_trials(deepcopy=False):
        record = read_record(outcome.directory, t.number) or {}
        out.append(
            {
                "number": t.number,
                "trial": trial_name(t.number),
                "state": t.state.name.lower(),
                "value": t.value,
                "params": t.params,
                "values": record.get("values", {}),
                "pruned_at": record.get("pruned_at"),
                "error": record.get("error"),
                "runs": [r["run"] for r in record.get("runs", [])],
            }
        )
    return out


def ranked(outcome: SearchOutcome) -> list[dict]:
    complete = [t for t in trials_of(outcome) if t["state"] == "complete"]
    lower = outcome.plan.settings.direction == "minimize"
    return sorted(complete, key=lambda t: (t["value"] if lower else -t["value"], t["number"]))


def importance(outcome: SearchOutcome) -> dict[str, dict]:
    """Parameter importances by fANOVA (a random forest's functional ANOVA) and PED-ANOVA
    (how the top trials' parameter distribution differs from the rest), or why not."""
    opt = optuna()
    methods = {
        "fANOVA": lambda: opt.importance.FanovaImportanceEvaluator(seed=outcome.plan.settings.seed),
        "PED-ANOVA": lambda: opt.importance.PedAnovaImportanceEvaluator(),
    }
    out = {}
    for name, make in methods.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = opt.importance.get_param_importances(outcome.study, evaluator=make())
            out[name] = {"importances": {k: float(v) for k, v in values.items()}}
        except (ImportError, ValueError, RuntimeError, ZeroDivisionError) as exc:
            out[name] = {"unavailable": f"{type(exc).__name__}: {exc}"}
    return out


def figures(outcome: SearchOutcome) -> dict[str, str]:
    """Optimisation history, importance, slice and parallel coordinates as PNG files in the
    search directory's figures/ (needs matplotlib; none without it or without two trials)."""
    if importlib.util.find_spec("matplotlib") is None or len(ranked(outcome)) < 2:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = optuna().visualization.matplotlib
    folder = outcome.directory / FIGURES
    folder.mkdir(exist_ok=True)
    out = {}
    for name, draw in {
        "history": plots.plot_optimization_history,
        "importance": plots.plot_param_importances,
        "slice": plots.plot_slice,
        "parallel": plots.plot_parallel_coordinate,
    }.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw(outcome.study)
                figure = axes.flat[0].figure if hasattr(axes, "flat") else axes.figure
                path = folder / f"{name}.png"
                figure.savefig(path, dpi=100, bbox_inches="tight")
                plt.close(figure)
            out[name] = str(path)
        except (ImportError, ValueError, RuntimeError, ZeroDivisionError):
            plt.close("all")
    return out


def to_json(outcome: SearchOutcome, *, with_figures: bool = True) -> dict:
    best = ranked(outcome)[:1]
    settings = outcome.plan.settings
    trials = trials_of(outcome)
    return {
        "search": outcome.plan.name,
        "directory": str(outcome.directory),
        "executor": outcome.executor,
        "settings": settings.to_dict() | {"trials": outcome.target},
        "counted": count(outcome.study),
        "states": {s: sum(t["state"] == s for t in trials) for s in ("complete", "pruned", "fail")},
        "interrupted": outcome.interrupted,
        "gave_up": outcome.gave_up,
        "best": best[0] | {"run_dirs": best_dirs(outcome, best[0])} if best else None,
        "trials": trials,
        "importance": importance(outcome),
        "figures": figures(outcome) if with_figures else {},
    }


def best_dirs(outcome: SearchOutcome, trial: dict) -> list[str]:
    return [
        str(outcome.directory / run_name(trial["number"], seed))
        for seed in outcome.plan.settings.seeds
    ]


def top_table(outcome: SearchOutcome, n: int = TOP) -> Table:
    s = outcome.plan.settings
    trials = trials_of(outcome)
    pruned = sum(t["state"] == "pruned" for t in trials)
    failed = sum(t["state"] == "fail" for t in trials)
    table = Table(
        title=f"best trials by {s.metric} (mean over {len(s.seeds)} seed"
        f"{'s' * (len(s.seeds) > 1)}, {s.direction}); {pruned} pruned, {failed} failed"
    )
    names = [d.name for d in s.space]
    for column in ("trial", s.metric, *names):
        table.add_column(column, justify="left" if column == "trial" else "right")
    for t in ranked(outcome)[:n]:
        table.add_row(t["trial"], fmt(t["value"]), *(_short(t["params"].get(k)) for k in names))
    return table


def importance_table(found: dict[str, dict]) -> Table:
    names = list(dict.fromkeys(k for v in found.values() for k in v.get("importances", {})))
    table = Table(title="parameter importance (share of the explained variation)")
    table.add_column("parameter")
    for method in found:
        table.add_column(method, justify="right")
    for name in names:
        table.add_row(
            name,
            *(
                fmt(found[m]["importances"][name]) if "importances" in found[m] else "—"
                for m in found
            ),
        )
    return table


def print_report(console: Console, outcome: SearchOutcome, data: dict) -> None:
    console.print(top_table(outcome))
    best = data["best"]
    if best is not None:
        console.print(
            f"best: {best['trial']} {outcome.plan.settings.metric} {fmt(best['value'])} with "
            + " ".join(f"{k}={_short(v)}" for k, v in best["params"].items()),
            highlight=False,
        )
        for path in best["run_dirs"]:
            console.print(f"  {path}", highlight=False)
    found = data["importance"]
    if any("importances" in v for v in found.values()):
        console.print(importance_table(found))
    for method, v in found.items():
        if "unavailable" in v:
            console.print(f"{method} importance unavailable: {v['unavailable']}", highlight=False)
    if data["figures"]:
        console.print(f"figures in {outcome.directory / FIGURES}", highlight=False)
    done = data["counted"]
    if outcome.interrupted:
        console.print(
            f"interrupted with {done} of {outcome.target} trials done; run the same command "
            f"to resume",
            highlight=False,
        )
    elif outcome.gave_up:
        console.print(
            f"stopped asking after {outcome.target} failed trials ({done} of "
            f"{outcome.target} done); see the failed runs' summaries",
            highlight=False,
        )
    console.print(f"search saved in [bold]{outcome.directory}[/bold]", highlight=False)
