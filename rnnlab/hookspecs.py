"""The plugin contract: every hook a plugin may implement.

Hooks gain arguments over time; they never lose them. A hook implementation may accept any
subset of a hook's arguments (pluggy passes only the ones it names). docs/hooks.md documents
each hook (a test keeps it in step with this file); an exception raised in a lifecycle hook stops
the run with an error naming the plugin.
"""

import pluggy

hookspec = pluggy.HookspecMarker("rnnlab")
hookimpl = pluggy.HookimplMarker("rnnlab")


@hookspec
def register_tasks():
    """Return a list of :class:`rnnlab.specs.TaskSpec` this plugin provides."""


@hookspec
def register_backends():
    """Return a list of :class:`rnnlab.specs.BackendSpec` this plugin provides."""


@hookspec
def register_executors():
    """Return a list of :class:`rnnlab.executors.ExecutorSpec`: engines that run sweep jobs."""


@hookspec
def register_cells():
    """Return a list of :class:`rnnlab.cells.CellSpec`: recurrent cells beyond the built-in
    rnn, lstm and gru (a backend runs a cell when it lists the cell's name in ``cells``)."""


@hookspec
def register_tables():
    """Return a list of :class:`rnnlab.plugin.TableSpec`: config tables this plugin reads (the
    core's tables and a task's options are declared by rnnlab and the task)."""


@hookspec
def on_run_start(run):
    """Called once before the first epoch with the :class:`rnnlab.training.loop.RunInfo` of the run.
    The return value is ignored."""


@hookspec
def on_epoch_end(run, epoch, metrics):
    """Called after every epoch with its 1-based number and metrics (the record just appended to
    metrics.jsonl); return a true value to stop the run after this epoch (setting
    ``run.stop_reason`` first says why, in the summary's ``stop_reason``)."""


@hookspec
def on_run_end(run, summary):
    """Called once after training and evaluation with the summary dict written to summary.json
    (not when the run failed). The return value is ignored."""


@hookspec
def checkpoint_state(run):
    """Return this plugin's own state for the run as a JSON-able dict (or None: nothing to
    keep); it is saved with every checkpoint, under the plugin's name."""


@hookspec
def restore_state(run, state):
    """Called when a run resumes from a checkpoint, before on_run_start, with the dict this
    plugin's checkpoint_state returned for that checkpoint. The return value is ignored."""
