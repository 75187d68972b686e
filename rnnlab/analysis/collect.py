"""The per-seed metrics of a sweep or search directory, grouped by variant (or trial)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RnnlabError

SWEEP_JSON, SEARCH_JSON, SUMMARY = "sweep.json", "search.json", "summary.json"
CONFIG = "config.toml"  # a run directory's resolved config
TRIALS = "trials"  # a search directory's folder of trial records
DONE = ("finished", "stopped")


@dataclass
class Collected:
    """``runs[variant][seed]`` is the summary.json of that variant's run with that seed."""

    kind: str  # "sweep" or "search"
    directory: Path
    labels: dict[str, str]  # variant -> its overrides or parameters, in words
    runs: dict[str, dict[int, dict]] = field(default_factory=dict)
    stats: dict | None = None  # the [stats] table recorded with the runs
    configs: dict[str, dict] = field(default_factory=dict)  # variant -> its resolved config
    source: Path | None = None  # the experiment file the runs came from (relative plugin paths)

    def values(self, split: str, metric: str) -> dict[str, dict[int, float]]:
        """variant -> seed -> the metric (variants with no run that has it left out)."""
        out = {}
        for variant, by_seed in self.runs.items():
            got = {
                seed: float(s["metrics"][split][metric])
                for seed, s in by_seed.items()
                if metric in s.get("metrics", {}).get(split, {})
            }
            if got:
                out[variant] = got
        return out

    def metric_names(self) -> list[str]:
        return sorted(
            {
                f"{split}.{name}"
                for by_seed in self.runs.values()
                for s in by_seed.values()
                for split, names in s.get("metrics", {}).items()
                for name in names
            }
        )


def merge(parts: list[Collected]) -> Collected:
    """Several directories as one table, each variant named ``DIRECTORY/VARIANT`` (the first
    directory's [stats] table applies)."""
    if len(parts) == 1:
        return parts[0]
    out = Collected("several", parts[0].directory, {}, {}, parts[0].stats)
    out.source = parts[0].source
    names = [p.directory.name for p in parts]
    if len(set(names)) < len(names):  # the same name in two folders: say which folder
        names = [str(p.directory) for p in parts]
    for part, prefix in zip(parts, names, strict=True):
        for variant, runs in part.runs.items():
            name = f"{prefix}/{variant}"
            out.runs[name] = runs
            out.labels[name] = part.labels.get(variant, "")
            if variant in part.configs:
                out.configs[name] = part.configs[variant]
    return out


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RnnlabError(f"{path}: unreadable ({exc})") from None


def summary_of(run: Path) -> dict | None:
    """The run's summary when it finished (or a plugin stopped it), else None."""
    try:
        summary = json.loads((run / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if summary.get("status") in DONE else None


def collect(path: Path, *, top: int | None = None, best_by: str | None = None) -> Collected:
    """A sweep directory's variants, or a search directory's complete trials (the ``top`` best,
    or with ``best_by = "TABLE.KEY"`` the best trial for each value of that parameter)."""
    path = Path(path)
    if (path / SWEEP_JSON).is_file():
        if best_by is not None or top is not None:
            raise RnnlabError("--top and --best-by choose among a search's trials, not a sweep's")
        return collect_sweep(path)
    if (path / SEARCH_JSON).is_file():
        return collect_search(path, top=top, best_by=best_by)
    raise RnnlabError(f"{path}: not a sweep or search directory (no {SWEEP_JSON} or {SEARCH_JSON})")


def collect_sweep(path: Path) -> Collected:
    record = read_json(path / SWEEP_JSON)
    ids = {i: v["id"] for i, v in enumerate(record.get("variants", []))}
    labels = {v["id"]: v.get("label", v["id"]) for v in record.get("variants", [])}
    out = Collected("sweep", path, labels, {v: {} for v in labels}, record.get("stats"))
    out.configs = {v["id"]: v["config"] for v in record.get("variants", []) if "config" in v}
    out.source = Path(record["source"]) if record.get("source") else None
    seeds = set(record.get("seeds", []))
    for run in record.get("runs", []):
        if run["seed"] not in seeds:
            continue
        summary = summary_of(path / run["run"])
        if summary is not None:
            out.runs[ids[run["variant"]]][run["seed"]] = summary
    return out


def trial_records(path: Path) -> list[dict]:
    """Every trial record of a search directory, by trial number."""
    folder = path / TRIALS
    records = [read_json(p) for p in sorted(folder.glob("t*.json"))] if folder.is_dir() else []
    return sorted(records, key=lambda r: r["number"])


def collect_search(path: Path, *, top: int | None, best_by: str | None) -> Collected:
    record = read_json(path / SEARCH_JSON)
    lower = record.get("direction", "minimize") == "minimize"
    complete = [r for r in trial_records(path) if r.get("state") == "complete"]
    complete.sort(key=lambda r: r["value"] if lower else -r["value"])
    if best_by is not None:
        known = {k for r in complete for k in r.get("params", {})}
        if best_by not in known:
            raise RnnlabError(
                f"--best-by {best_by}: not a searched parameter "
                f"(searched: {', '.join(sorted(known)) or 'none yet'})"
            )
        chosen, seen = [], set()
        for r in complete:
            value = json.dumps(r["params"].get(best_by))
            if value not in seen:
                seen.add(value)
                chosen.append(r)
    else:
        chosen = complete[: top or 8]
    labels = {
        f"t{r['number']:04d}": " ".join(
            f"{k.split('.')[-1]}={_short(v)}" for k, v in r["params"].items()
        )
        for r in chosen
    }
    out = Collected("search", path, labels, {}, record.get("stats"))
    for r in chosen:
        runs = {}
        for run in r.get("runs", []):
            summary = summary_of(path / run["run"])
            if summary is not None:
                runs[run["seed"]] = summary
        out.runs[f"t{r['number']:04d}"] = runs
        config = config_of([path / run["run"] for run in r.get("runs", [])])
        if config is not None:
            out.configs[f"t{r['number']:04d}"] = config
    return out


def config_of(runs: list[Path]) -> dict | None:
    """The resolved config the first of ``runs`` recorded (config.toml), or None."""
    for run in runs:
        try:
            return tomllib.loads((run / CONFIG).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
