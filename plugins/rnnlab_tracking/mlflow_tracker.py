"""MLflow: params, per-epoch metrics, final metrics and the run directory's files."""

from __future__ import annotations

from pathlib import Path

from rnnlab.plugin import ConfigError

EPOCH_KEYS = ("loss", "val_loss", "lr", "seconds")


class MlflowTracker:
    name, key = "mlflow", "mlflow"

    def __init__(self, run, resumed: dict):
        try:
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError(
                "tracker mlflow needs mlflow: pip install 'rnnlab[mlflow]' (or "
                "remove tracking.mlflow)",
                source=str(run.experiment.source or ""),
                table="tracking",
                key="mlflow",
            ) from None
        from . import flat_config

        self.Metric = Metric
        uri = run.experiment.tables["tracking"]["mlflow"]
        self.run_dir = Path(run.run_dir)
        # any failure here (a bad URI, a server that does not answer, a missing driver) is
        # raised before the first epoch, named by the plugin
        self.client = MlflowClient(tracking_uri=uri)
        if resumed.get("mlflow_run_id"):  # a resumed run goes on in its MLflow run
            self.run_id = resumed["mlflow_run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            return
        name = run.experiment.experiment.name
        found = self.client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else self.client.create_experiment(name)
        self.run_id = self.client.create_run(experiment_id, run_name=self.run_dir.name).info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in flat_config(run.experiment.to_dict()).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        self.client.set_tag(self.run_id, "rnnlab.run_dir", str(self.run_dir.resolve()))

    def _metrics(self, values: dict[str, float], step: int) -> None:
        import time

        now = int(time.time() * 1000)
        metrics = [self.Metric(k.replace("/", "."), float(v), now, step) for k, v in values.items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def epoch(self, epoch: int, metrics: dict) -> None:
        self._metrics(
            {k: metrics[k] for k in EPOCH_KEYS if isinstance(metrics.get(k), int | float)}, epoch
        )

    def end(self, summary: dict) -> None:
        from . import final_metrics

        self._metrics(final_metrics(summary), summary.get("epochs_run") or 0)
        self.client.log_artifacts(self.run_id, str(self.run_dir))
        status = "FINISHED" if summary.get("status") in ("finished", "stopped") else "FAILED"
        self.client.set_terminated(self.run_id, status)
        self.done = True

    def state(self) -> dict:
        return {"mlflow_run_id": self.run_id}

    def close(self) -> None:
        if not getattr(self, "done", False):  # the run ended without on_run_end
            self.client.set_terminated(self.run_id, "KILLED")
