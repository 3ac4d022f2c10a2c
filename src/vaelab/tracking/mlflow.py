"""MLflow, through its client (`mlflow-skinny` is enough): a run per vaelab run, in a local file store by default.

`--log-uri` is a folder (a local store) or any tracking URI MLflow takes (`http://host:5000`, `sqlite:///m.db`);
without it the store is ./mlruns, MLflow's own default folder (`mlflow ui --backend-store-uri ./mlruns` shows it;
MLflow 3 keeps that file store in maintenance mode, so vaelab opts in to it for file URIs only). A run goes to the
experiment "vaelab"; the members of a comparison study to one experiment named after the study's folder. The
options are the run's parameters (a resumed run's changed options, such as more epochs, become tags
`resumed.<option>`: MLflow's parameters cannot change), the sample grids are artifacts under samples/, the figures
under figures/, with report.html.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from vaelab.errors import ConfigError, RunError, one_line
from vaelab.tracking.base import Destination, Tracker

DEFAULT_STORE = "mlruns"
EXPERIMENT = "vaelab"
MAX_BATCH = 100  # parameters per log_batch call (MLflow's limit)


def tracking_uri(uri: str | None) -> str:
    """A folder (or nothing: ./mlruns) as a file URI; any URI with a scheme as it is."""
    if uri and ("://" in uri or uri.startswith("file:")):
        return uri
    return Path(uri or DEFAULT_STORE).absolute().as_uri()


class Session:
    def __init__(self, client, run_id: str):
        self.client, self.run_id = client, run_id

    def hyper_parameters(self, values: dict[str, Any], resumed: bool) -> None:
        from mlflow.entities import Param

        logged = self.client.get_run(self.run_id).data.params
        new = [Param(k, str(v)) for k, v in values.items() if k not in logged]
        for i in range(0, len(new), MAX_BATCH):
            self.client.log_batch(self.run_id, params=new[i : i + MAX_BATCH])
        for name, value in values.items():
            if name in logged and logged[name] != str(value):
                self.client.set_tag(self.run_id, f"resumed.{name}", str(value))

    def scalars(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(name, value, now, step) for name, value in values.items()]
        for i in range(0, len(metrics), MAX_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + MAX_BATCH])

    def image(self, name: str, path: Path, step: int) -> None:
        """A per-epoch grid under samples/ (its file says the epoch), a figure under figures/."""
        self.client.log_artifact(self.run_id, str(path), name.split("/")[0])

    def file(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def flush(self) -> None:
        """Every call above is written when it returns."""

    def close(self, finished: bool) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if finished else "FAILED")


def experiment_id(client, destination: Destination) -> str:
    name = str(Path(destination.study).absolute()) if destination.study else EXPERIMENT
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def open_session(destination: Destination, saved: dict[str, Any] | None) -> tuple[Session, dict[str, Any]]:
    from mlflow.tracking import MlflowClient

    uri = saved["uri"] if saved and isinstance(saved.get("uri"), str) else tracking_uri(destination.uri)
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # see the module's doc
    try:
        client = MlflowClient(tracking_uri=uri)
        if saved and isinstance(saved.get("run_id"), str):
            run_id = saved["run_id"]
            client.get_run(run_id)  # still there?
            client.update_run(run_id, status="RUNNING")
        else:
            tags = {"vaelab.run_dir": str(destination.run_dir.absolute())}
            if destination.study:
                tags["vaelab.study"] = str(Path(destination.study).absolute())
            run_id = client.create_run(experiment_id(client, destination), run_name=destination.name, tags=tags)
            run_id = run_id.info.run_id
    except Exception as exc:  # MlflowException, a refused connection...: one line, before any work
        reason = one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        error = RunError if saved else ConfigError
        raise error(f"--log mlflow: cannot use the tracking store {uri} ({reason})") from None
    return Session(client, run_id), {"uri": uri, "run_id": run_id}


TRACKER = Tracker(
    name="mlflow",
    help="an MLflow run (./mlruns, or --log-uri: a folder or a tracking server's URI)",
    extra="mlflow",
    modules=("mlflow",),
    open=open_session,
)
