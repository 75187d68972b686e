"""The `rnnlab` command. Each subcommand lives in its own module of this package, which this
one adds to the group.

A user error (RnnlabError) is printed as one message with exit status 2; ``--debug`` (or
RNNLAB_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys

import click
from rich.markup import escape

from ..errors import RnnlabError
from ..registry.failures import plugin_error
from . import (
    compare_cmd,
    diff_cmd,
    export_cmd,
    generate_cmd,
    matrix_cmd,
    plot_cmd,
    plugins_cmd,
    resume_cmd,
    run_cmd,
    runs_cmd,
    schema_cmd,
    search_cmd,
    show_cmd,
    stats_cmd,
    sweep_cmd,
    warm_up_cmd,
)
from .common import debug_option, err_console, is_debug


class RnnlabGroup(click.Group):
    """Exit statuses: 2 for a user error, 3 when training diverged (both RnnlabError, printed as
    one message), 128 + signal number when interrupted (130 for Ctrl-C, 143 for SIGTERM)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RnnlabError as exc:
            if is_debug(ctx):
                raise
            err_console().print(
                f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True
            )  # paths stay whole
            ctx.exit(exc.exit_code)
        except MemoryError:
            if is_debug(ctx):
                raise
            err_console().print(
                "[bold red]error:[/bold red] not enough memory for this "
                "experiment; use smaller sizes (model.hidden_size, "
                "train.batch_size, the task's data)",
                highlight=False,
            )
            ctx.exit(2)
        except (Exception, SystemExit) as exc:  # plugin code's error (or its sys.exit): one
            # message; rnnlab's own error: a traceback; an exit by rnnlab's own code: an exit
            failure = plugin_error(exc)
            if failure is None or is_debug(ctx):
                raise
            err_console().print(
                f"[bold red]error:[/bold red] {escape(str(failure))}",
                highlight=False,
                soft_wrap=True,
            )
            ctx.exit(failure.exit_code)
        except KeyboardInterrupt as exc:
            if is_debug(ctx):
                raise
            err_console().print(
                str(exc) or "interrupted", highlight=False, markup=False, soft_wrap=True
            )
            ctx.exit(getattr(exc, "exit_code", 130))


def exit_quickly() -> None:
    """Freeze the garbage collector's objects once the command's exit handlers have run (done
    once per process). What a command built stays alive until the interpreter ends, and the
    interpreter's last collections walk all of it: after a run that compiled numba kernels
    (every compiled function's LLVM and typing data) the process took 1-10 s to exit after its
    last line, 1.1 s even with the kernels loaded from the cache (load 13); frozen, 0.1 s.
    Objects are still freed by reference counting and files still closed; only cycles left at
    exit are not collected, which the operating system reclaims with the process."""
    if not _freezing:
        _freezing.append(True)
        atexit.register(gc.freeze)  # registered first, so it runs after the other handlers


_freezing: list[bool] = []


@click.group(cls=RnnlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@debug_option
@click.version_option(package_name="rnnlab")
def main():
    """rnnlab: experiments with recurrent neural networks, through plugins."""
    exit_quickly()
    if os.environ.get("RNNLAB_DEBUG", "") not in ("", "0"):
        click.get_current_context().meta["rnnlab.debug"] = True


# each subcommand's module defines its command and the group gathers them here: the modules
# never import this package back
for command in (
    compare_cmd.compare_cmd,
    diff_cmd.diff,
    export_cmd.export_command,
    generate_cmd.generate,
    matrix_cmd.matrix,
    plot_cmd.plot,
    plugins_cmd.plugins,
    resume_cmd.resume,
    run_cmd.run,
    runs_cmd.runs,
    schema_cmd.schema,
    search_cmd.search,
    show_cmd.show,
    stats_cmd.stats,
    sweep_cmd.sweep,
    warm_up_cmd.warm_up,
):
    main.add_command(command)

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
