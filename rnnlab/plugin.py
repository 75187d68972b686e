"""Everything a plugin author needs, in one module: the published boundary of rnnlab.

    from rnnlab.plugin import Dataset, Option, Split, Task, TaskSpec, hookimpl

Task plugins build on :class:`Task`, :class:`TaskSpec`, :class:`Dataset`, :class:`Split`,
:class:`Option` and :class:`Demo` (a task may declare what "solved" means with the optional
attribute ``Task.solved = (METRIC, OP, NUMBER)``, which the statistics read); backend plugins
on :class:`Backend` and :class:`BackendSpec` (and, for a fused epoch, :class:`EpochPlan`,
:class:`Optimizer`, :func:`init_params`, :func:`reference_epoch`, :func:`stateful_epoch`,
:func:`dropout_masks`; :func:`preparing` tells the user what a backend compiles while
the core waits); a new recurrent cell is a :class:`CellSpec`; a sweep engine an
:class:`Executor` with its :class:`ExecutorSpec`; a
config table a plugin reads a :class:`TableSpec`. Parameter names are built
by :func:`param_name`, never written as strings; the valid steps of sequences of different
lengths by :func:`valid_steps`. A task that reads the user's data files reports their problems
with :func:`read_data` (a regular file of bounded size), :func:`read_text`,
:func:`data_error` and :func:`column_index`. The built-in plugins import from here only;
names here keep their meaning across releases. The conformance checks a plugin's tests run are
in :mod:`rnnlab.testing`.
"""

from __future__ import annotations

from .cells import (
    BUILTIN_CELLS,
    LAYER_KEYS,
    CellSpec,
    InitContext,
    ParamSpec,
    cell_spec,
    uniform_hidden,
    uniform_input,
)
from .errors import ConfigError, RnnlabError
from .executors import Executor, ExecutorOptions, ExecutorSpec, RunJob, RunResult
from .experiment.datafiles import column_index, data_error, read_data, read_text
from .hookspecs import hookimpl
from .nn.lengths import valid_steps
from .nn.model import HEAD_KEYS, Model, Shape, dropout_masks, init_params, log_softmax, param_name
from .nn.optim import Optimizer
from .registry.progress import preparing
from .specs import (
    DTYPES,
    LOSSES,
    TARGETS,
    Backend,
    BackendSpec,
    Dataset,
    Demo,
    Option,
    Split,
    TableSpec,
    Task,
    TaskContext,
    TaskSpec,
)
from .training.loop import reference_epoch
from .training.session import EpochPlan
from .training.stateful import chunks, stateful_epoch

__all__ = [
    "BUILTIN_CELLS",
    "DTYPES",
    "HEAD_KEYS",
    "InitContext",
    "LAYER_KEYS",
    "LOSSES",
    "TARGETS",
    "Backend",
    "BackendSpec",
    "CellSpec",
    "ConfigError",
    "Dataset",
    "Demo",
    "EpochPlan",
    "Executor",
    "ExecutorOptions",
    "ExecutorSpec",
    "Model",
    "Optimizer",
    "Option",
    "ParamSpec",
    "RnnlabError",
    "RunJob",
    "RunResult",
    "Shape",
    "Split",
    "TableSpec",
    "Task",
    "TaskContext",
    "TaskSpec",
    "cell_spec",
    "chunks",
    "column_index",
    "data_error",
    "dropout_masks",
    "hookimpl",
    "init_params",
    "log_softmax",
    "param_name",
    "preparing",
    "read_data",
    "read_text",
    "reference_epoch",
    "stateful_epoch",
    "uniform_hidden",
    "uniform_input",
    "valid_steps",
]
