"""The Optuna side of a search: storage, sampler, pruner and the space as distributions.

The study lives in one journal file in the search directory (``study.journal``: appended under
a file lock, so many processes can write it at once, where SQLite would say "database is
locked"), or in the database a ``[search] storage`` URL names. The driver and every worker open
it by path, so workers on other machines need the search directory on a shared file system.

Samplers are made afresh for each trial, seeded from ``[search] seed`` and the trial's number:
a serial search then asks the same points whether or not it was stopped and resumed on the way.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np

from ..errors import RnnlabError
from .space import Dimension, SearchSettings

JOURNAL = "study.journal"


def require_optuna() -> None:
    if importlib.util.find_spec("optuna") is None:
        raise RnnlabError("rnnlab search needs Optuna: pip install 'rnnlab[search]'")


def optuna():
    require_optuna()
    import optuna as module

    module.logging.set_verbosity(logging.WARNING)  # rnnlab reports the trials itself
    return module


def storage_for(directory: Path, url: str | None):
    """The study's storage: the journal file in ``directory``, or the database at ``url``."""
    opt = optuna()
    if url is not None:
        try:
            return opt.storages.RDBStorage(url)
        except Exception as exc:  # a bad URL or a driver that is not installed
            raise RnnlabError(f"[search] storage = {url!r}: {type(exc).__name__}: {exc}") from None
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(Path(directory) / JOURNAL)))


def distributions(space: list[Dimension]) -> dict:
    dist = optuna().distributions
    out = {}
    for d in space:
        if d.kind == "choice":
            out[d.name] = dist.CategoricalDistribution(list(d.choices))
        elif d.kind == "int":
            out[d.name] = dist.IntDistribution(d.low, d.high, log=d.log, step=d.step or 1)
        else:
            out[d.name] = dist.FloatDistribution(d.low, d.high, log=d.log, step=d.step)
    return out


def trial_seed(seed: int, number: int) -> int:
    """The sampler's seed for trial ``number``: independent streams per trial."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def sampler_for(settings: SearchSettings, number: int):
    """The sampler that asks trial ``number``'s point. TPE treats trials still running as
    if they had the worst value seen (constant liar), so parallel workers spread out."""
    samplers = optuna().samplers
    seed = trial_seed(settings.seed, number)
    if settings.sampler == "tpe":
        startup = min(10, max(2, settings.trials // 4))
        return samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=startup)
    if settings.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":
        grid = {d.name: list(d.choices) for d in settings.space}
        return samplers.GridSampler(grid, seed=seed)
    # the QMC sequence is indexed by trial number; one seed scrambles the whole sequence
    return quietly(
        lambda: samplers.QMCSampler(
            seed=settings.seed, scramble=True, warn_asynchronous_seeding=False
        )
    )


def quietly(make):
    """``make()`` without Optuna's warning that a sampler or pruner is experimental."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna().exceptions.ExperimentalWarning)
        return make()


def pruner_for(settings: SearchSettings):
    """The pruner: median, asha and hyperband compare the curve of a trial with the others'
    at the same step (an epoch of a seed: step = seed index x epochs + epoch); wilcoxon
    compares its per-seed values with the best trial's on the same seeds."""
    pruners = optuna().pruners
    if settings.pruner == "median":
        return pruners.MedianPruner(n_startup_trials=4)
    if settings.pruner == "asha":
        return pruners.SuccessiveHalvingPruner()
    if settings.pruner == "hyperband":
        return pruners.HyperbandPruner()
    if settings.pruner == "wilcoxon":
        return quietly(lambda: pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2))
    return pruners.NopPruner()


def open_study(directory: Path, settings: SearchSettings, name: str, *, create: bool):
    """The study (created when ``create``, by the driver; loaded, by a worker), with this
    search's pruner."""
    opt = optuna()
    storage = storage_for(directory, settings.storage)
    if create:
        return opt.create_study(
            storage=storage,
            study_name=name,
            direction=settings.direction,
            pruner=pruner_for(settings),
            sampler=sampler_for(settings, 0),
            load_if_exists=True,
        )
    # a worker only reports and asks the pruner; it never samples
    return opt.load_study(
        study_name=name,
        storage=storage,
        pruner=pruner_for(settings),
        sampler=opt.samplers.RandomSampler(),
    )
