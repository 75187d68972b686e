"""TensorBoard event files in the run directory, written with tensorboardX."""

from __future__ import annotations

import uuid

from rnnlab.plugin import ConfigError

# per-epoch record key -> scalar tag
SCALARS = {"loss": "loss", "val_loss": "val_loss", "lr": "lr", "seconds": "seconds_per_epoch"}


class TensorBoardTracker:
    name, key = "tensorboard", "tensorboard"

    def __init__(self, run, resumed: dict):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ConfigError(
                "tracker tensorboard needs tensorboardX: pip install "
                "'rnnlab[tensorboard]' (or set tracking.tensorboard = false)",
                source=str(run.experiment.source or ""),
                table="tracking",
                key="tensorboard",
            ) from None
        from . import flat_config

        self.run = run
        # resumed from the checkpoint of epoch k: TensorBoard drops the events of steps > k
        # that the interrupted process wrote (they are run again)
        # event files are named by the second, host and pid: a resume within the same second
        # (in the same process, through the Python API) would overwrite the first file, so each
        # writer gets a suffix of its own
        self.writer = SummaryWriter(
            logdir=str(run.run_dir),
            purge_step=run.epoch + 1 if run.epoch else None,
            filename_suffix=f".{uuid.uuid4().hex[:12]}",
        )
        self.config = flat_config(run.experiment.to_dict())
        self.writer.add_text(
            "config", "\n".join(f"    {k} = {v!r}" for k, v in self.config.items())
        )
        self.writer.flush()

    def epoch(self, epoch: int, metrics: dict) -> None:
        for key, tag in SCALARS.items():
            value = metrics.get(key)
            if isinstance(value, int | float):
                self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    def end(self, summary: dict) -> None:
        from . import final_metrics

        step = summary.get("epochs_run") or 0
        finals = final_metrics(summary)
        for tag, value in finals.items():
            self.writer.add_scalar(f"final/{tag}", value, step)
        # the resolved config as hyper-parameters, against the final metrics (HParams tab)
        self.writer.add_hparams(
            self.config, {f"hparam/{k}": v for k, v in finals.items()}, name="hparams"
        )
        self.writer.flush()

    def state(self) -> dict:
        return {}

    def close(self) -> None:
        self.writer.close()
