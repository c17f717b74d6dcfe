"""Reading mesa-lab's result tables from Python: `results/NAME/TABLE.parquet` with its
`TABLE.meta.json` sidecar (seed, config, git revision, time).

Notebooks select columns by name, so tables that gain columns keep working.
"""

import json
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
DATA = Path(__file__).resolve().parent / "data"


def table(experiment: str, name: str) -> tuple[pl.DataFrame, dict]:
    """The table `results/EXPERIMENT/NAME.parquet` and its sidecar."""
    base = RESULTS / experiment
    frame = pl.read_parquet(base / f"{name}.parquet")
    meta = json.loads((base / f"{name}.meta.json").read_text())
    return frame, meta


def provenance(meta: dict) -> str:
    """One line: where a table's numbers came from."""
    return (
        f"{meta.get('table', '?')}: {meta.get('rows', '?')} rows, seed {meta.get('seed')}, "
        f"git revision {meta.get('git_revision')}, written {meta.get('created_utc')}"
    )


def mean_min_max(column: str) -> list[pl.Expr]:
    """Mean, min and max of a column, named `COLUMN`, `COLUMN_min`, `COLUMN_max`."""
    c = pl.col(column)
    return [c.mean().alias(column), c.min().alias(f"{column}_min"), c.max().alias(f"{column}_max")]


def auroc(scores, labels) -> float:
    """AUROC as scikit-learn computes it (ties count one half): the probability that a random
    positive scores above a random negative."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    pos, neg = scores[labels], scores[~labels]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))
