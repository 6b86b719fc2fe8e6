"""The run folder's tables: metrics.csv (one row per epoch) and grad_health.csv, written atomically."""

import csv
import io
import os
from pathlib import Path

from ..io.atomic import atomic_write_text
from ..io.checkpoint import CheckpointError
from ..io.text import read_log_rows
from .config import METRIC_COLUMNS

LR_COLUMNS = ("step", "epoch", "lr")  # lr.csv: the learning rate each optimiser step used
LR_TYPES = dict(zip(LR_COLUMNS, (int, int, float)))   # as read back


def _write_csv(path, columns, rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(row[k]) if isinstance(row[k], float) else row[k]) for k in columns})
    atomic_write_text(path, buffer.getvalue())


def write_metrics(path, metrics):
    """Write ``metrics.csv`` (atomically) with the columns :data:`METRIC_COLUMNS`, floats at full precision."""
    _write_csv(path, METRIC_COLUMNS, metrics)


def read_metrics(path):
    """Read a ``metrics.csv`` (or a run folder's) back into a list of dicts of numbers."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    return read_log_rows(path, {"epoch": int}, rest=float)    # ValueError naming the line of a bad row


def read_lr(path):
    """Read a run's ``lr.csv`` (or a run folder's) into a list of dicts ``{"step": int, "epoch": int,
    "lr": float}``, one per optimiser step; ``[]`` when the file is absent (runs from before it existed)."""
    path = Path(path)
    if path.is_dir():
        path = path / "lr.csv"
    if not path.exists():
        return []
    return read_log_rows(path, LR_TYPES)


def logs_lag(run_dir, metrics):
    """True when the run folder's ``metrics.csv`` lags behind (or differs from) ``metrics``, a checkpoint's rows.

    That happens when a crash (SIGKILL, power cut) came after ``last.ckpt`` was
    saved and before the logs were; a missing or unreadable ``metrics.csv``
    lags too (:func:`why_logs_lag` says which).
    """
    return why_logs_lag(run_dir, metrics) is not None


def why_logs_lag(run_dir, metrics):
    """Why the run folder's ``metrics.csv`` has to be written again from ``metrics`` (a checkpoint's rows):
    "it was missing", "it was damaged", "it lagged behind"; None when it holds those rows. A
    ``metrics.csv`` that is no regular file raises CheckpointError (:func:`refuse_irregular_metrics`)."""
    refuse_irregular_metrics(run_dir)
    try:
        rows = read_metrics(Path(run_dir) / "metrics.csv")
    except FileNotFoundError:
        return "it was missing" if metrics else None
    except (OSError, ValueError, TypeError, KeyError, csv.Error):
        return "it was damaged" if metrics else None
    return "it lagged behind" if [row.get("epoch") for row in rows] != [row.get("epoch") for row in metrics] else None


def refuse_irregular_metrics(run_dir):
    """Raise CheckpointError when the run folder's ``metrics.csv`` is there but is no regular file (a
    device, a pipe, a folder): resuming would read or replace something the run did not write."""
    metrics_csv = Path(run_dir) / "metrics.csv"
    if os.path.lexists(metrics_csv) and not metrics_csv.is_file():
        raise CheckpointError(f"{metrics_csv} is not a regular file; move it away to resume (the logs are "
                                  "written again from the checkpoint)")


def check_metric_rows(rows, path="<checkpoint>"):
    """Raise CheckpointError unless every row of a checkpoint's ``metrics`` has every column as a number."""
    for i, row in enumerate(rows):
        bad = [c for c in METRIC_COLUMNS if isinstance(row.get(c), bool) or not isinstance(row.get(c), (int, float))]
        if bad:
            raise CheckpointError(f"checkpoint {path}: metrics row {i} lacks a number for {', '.join(bad)}")
