"""Datasets: uploaded files of rows (JSONL, CSV, Parquet) that training jobs read.

``formats`` reads and checks a file and infers its schema; ``store`` keeps uploads on the
gateway's disk, content-addressed by sha256, with their rows in SQLite. Parquet support
(pyarrow) is imported only when a Parquet file is read.
"""

from .formats import FORMATS, Column, Format, Inspection, inspect, iter_rows
from .store import Dataset, DatasetStore, is_dataset_id

__all__ = ["FORMATS", "Column", "Dataset", "DatasetStore", "Format", "Inspection", "inspect", "is_dataset_id",
           "iter_rows"]
