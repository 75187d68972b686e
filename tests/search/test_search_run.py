"""Searches end to end on tiny sine runs (numpy backend): reproducible when serial, pruned
trials recorded as pruned with their curve, resumed and extended without losing a trial, the
best trial rerun by `rnnlab run` to the bit, on local processes and Dask."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnlab.cli import main

optuna = pytest.importorskip("optuna")

SEARCH = """
[experiment]
name = "tiny"
[task]
name = "sine"
points = 120
window = 5
[model]
hidden_size = 4
[train]
epochs = {epochs}
batch_size = 16
[search]
trials = {trials}
sampler = "{sampler}"
pruner = "{pruner}"
seeds = {seeds}
seed = 5
[search.space]
"model.hidden_size" = {{ int = [2, 8] }}
"train.learning_rate" = {{ float = [1e-3, 3e-2], log = true }}
"model.cell" = ["rnn", "gru"]
"""


def write(folder: Path, *, trials=4, sampler="tpe", pruner="none", seeds="[0]", epochs=2) -> Path:
    path = folder / "tiny.toml"
    path.write_text(
        SEARCH.format(trials=trials, sampler=sampler, pruner=pruner, seeds=seeds, epochs=epochs)
    )
    return path


def search(*args) -> dict:
    result = CliRunner().invoke(main, ["search", *map(str, args), "--json", "--no-figures"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def study_trials(directory: Path):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(directory / "study.journal")))
    return optuna.load_study(study_name="tiny", storage=storage).get_trials()


def points(data: dict) -> list:
    return [(t["number"], t["state"], t["params"], t["value"]) for t in data["trials"]]


@pytest.mark.slow
def test_a_seeded_serial_search_twice_gives_the_same_trials(tmp_path):
    path = write(tmp_path, trials=3, seeds="[0, 1]")
    first = search(path, "--workers", 1, "--out", tmp_path / "a")
    second = search(path, "--workers", 1, "--out", tmp_path / "b")
    assert len(first["trials"]) == 3 and first["counted"] == 3
    assert points(first) == points(second)  # params and values, bit for bit
    assert len({json.dumps(t["params"]) for t in first["trials"]}) == 3
    best = first["best"]
    assert best["value"] == min(t["value"] for t in first["trials"])
    assert [Path(p).name for p in best["run_dirs"]] == [f"{best['trial']}_seed-{s}" for s in (0, 1)]
    # each trial's value is the mean of its runs' metric, read from ordinary run directories
    for t in first["trials"]:
        runs = [tmp_path / "a" / "search-tiny" / f"{t['trial']}_seed-{s}" for s in (0, 1)]
        values = [
            json.loads((r / "summary.json").read_text())["metrics"]["val"]["loss"] for r in runs
        ]
        assert t["value"] == pytest.approx(sum(values) / 2, rel=1e-15)
    for method in ("fANOVA", "PED-ANOVA"):
        assert method in first["importance"]
    # --more extends the same study (from its directory)
    more = search(tmp_path / "a" / "search-tiny", "--more", 1, "--workers", 1)
    assert more["counted"] == 4 and points(more)[:3] == points(first)
    # `rnnlab stats` reads the search's best trials
    stats = CliRunner().invoke(main, ["stats", str(tmp_path / "a" / "search-tiny"), "--json"])
    assert stats.exit_code == 0, stats.output
    assert len(json.loads(stats.stdout)["variants"]) == 4
    by_cell = CliRunner().invoke(
        main, ["stats", str(tmp_path / "a" / "search-tiny"), "--best-by", "model.cell", "--json"]
    )
    labels = json.loads(by_cell.stdout)["labels"]
    cells = {t["params"]["model.cell"] for t in more["trials"]}
    assert len(labels) == len(cells)  # the best trial of each cell tried
    assert sorted(label.split("cell=")[1] for label in labels.values()) == sorted(cells)
    # several searches make one table: the best trial of each, paired on their shared seeds
    both = [str(tmp_path / x / "search-tiny") for x in ("a", "b")]
    stats = CliRunner().invoke(
        main, ["stats", *both, "--top", "1", "--metric", "val.loss", "--json"]
    )
    got = json.loads(stats.stdout)
    pair = got["pairs"]
    a, b = more["best"], first["best"]  # "a" went on with --more 1, "b" did not
    assert [(p["a"], p["b"], p["test"]) for p in pair] == [
        (f"{both[0]}/{a['trial']}", f"{both[1]}/{b['trial']}", "paired t")
    ]
    assert [v["mean"] for v in got["variants"]] == pytest.approx([a["value"], b["value"]])


@pytest.mark.slow
def test_a_pruned_trial_is_recorded_as_pruned_with_its_curve(tmp_path):
    from rnnlab.experiment.load import read_experiment
    from rnnlab.search import build_search
    from rnnlab.search.directory import prepare_directory
    from rnnlab.search.study import distributions, open_study

    path = write(tmp_path, trials=5, pruner="median", epochs=3)
    loaded = read_experiment(str(path), warn=print)
    plan = build_search(loaded.raw, loaded.registry, source=loaded.source)
    directory = tmp_path / "runs" / "search-tiny"
    prepare_directory(directory, plan)
    study = open_study(directory, plan.settings, plan.name, create=True)
    space = distributions(plan.settings.space)
    for _ in range(4):  # four trials that did far better at every epoch: the fifth is pruned
        study.add_trial(
            optuna.trial.create_trial(
                params={"model.hidden_size": 8, "train.learning_rate": 0.01, "model.cell": "gru"},
                distributions=space,
                value=1e-6,
                intermediate_values={1: 1e-6, 2: 1e-6, 3: 1e-6},
            )
        )
    data = search(path, "--workers", 1, "--out", tmp_path / "runs")
    fifth = data["trials"][4]
    assert fifth["state"] == "pruned" and data["counted"] == 5
    assert study_trials(directory)[4].state == optuna.trial.TrialState.PRUNED
    run = directory / "t0004_seed-0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert summary["stop_reason"] == "pruned by the search after epoch 1 (step 1)"
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in curve] == [1]  # its curve up to the pruning, kept
    assert study_trials(directory)[4].intermediate_values == {1: curve[0]["val_loss"]}
    record = json.loads((directory / "trials" / "t0004.json").read_text())
    assert record["state"] == "pruned" and record["runs"][0]["status"] == "stopped"


def command(path: Path, out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "rnnlab", "search", str(path), "--out", str(out), "--json",
            "--no-figures", *map(str, extra)]  # fmt: skip


@pytest.mark.slow
def test_sigint_halfway_then_resume_ends_with_exactly_the_trials(tmp_path):
    path = write(tmp_path, trials=16, pruner="median")
    out = tmp_path / "runs"
    directory = out / "search-tiny"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(
        command(path, out, "--workers", 2),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's
        env=env,
    )
    deadline = time.monotonic() + 600
    while len(list((directory / "trials").glob("t*.json"))) < 8:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C at a terminal: the driver and its workers
    _, err = first.communicate(timeout=600)
    assert first.returncode == 130, err.decode()
    stopped = [t for t in study_trials(directory) if t.state.is_finished()]
    assert 8 <= len(stopped) < 16
    again = subprocess.run(command(path, out, "--workers", 2), capture_output=True, env=env)
    assert again.returncode == 0, again.stderr.decode()
    data = json.loads(again.stdout)
    trials = study_trials(directory)
    counted = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 16 == data["counted"]
    assert [t.number for t in trials] == list(range(len(trials)))  # none duplicated
    assert not [t for t in trials if t.state.name in ("RUNNING", "FAIL")]  # none lost
    records = sorted(p.name for p in (directory / "trials").glob("t*.json"))
    assert records == [f"t{n:04d}.json" for n in range(16)]
    # the best trial's run directory, rerun by `rnnlab run`, gives its metric to the bit
    best = Path(data["best"]["run_dirs"][0])
    rerun = CliRunner().invoke(
        main, ["run", str(best / "config.toml"), "--out", str(tmp_path / "rerun")]
    )
    assert rerun.exit_code == 0, rerun.output
    [again_dir] = list((tmp_path / "rerun").iterdir())
    metrics = json.loads((again_dir / "summary.json").read_text())["metrics"]
    assert metrics == json.loads((best / "summary.json").read_text())["metrics"]


@pytest.mark.slow
def test_the_same_search_on_a_local_dask_cluster_completes(tmp_path):
    pytest.importorskip("distributed")
    path = write(tmp_path, trials=6, pruner="median")
    data = search(path, "--dask", "local", "--workers", 2, "--out", tmp_path / "runs")
    assert data["counted"] == 6 and data["executor"].startswith("dask")
    assert all(t["state"] in ("complete", "pruned") for t in data["trials"])
