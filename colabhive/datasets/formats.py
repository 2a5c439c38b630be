"""Read a dataset file row by row and infer its schema: JSONL, CSV and Parquet.

Files are read in a single streaming pass (a line, a CSV record or a Parquet batch at a
time), so a dataset of a few hundred MiB is checked without holding it in memory. The
first bad row stops the pass with :class:`InvalidInput` naming its line and column, so the
uploader can fix the file instead of guessing; ``field`` is the column (``$`` when the row
as a whole is at fault) and ``detail`` carries ``{"line", "column"}``.

A column's type is the widest of the values it holds, on the ladder
``bool < int < float < str`` (``null`` widens to anything and makes the column nullable):
a column of 1, 2.5 and "n/a" is ``str``, one of 1 and 2.5 is ``float``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import msgspec

from ..errors import InvalidInput

__all__ = [
    "Column",
    "FORMATS",
    "Format",
    "Inspection",
    "MEDIA_TYPES",
    "format_of_media_type",
    "format_of_path",
    "inspect",
    "iter_rows",
]

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")
ColumnType = Literal["null", "bool", "int", "float", "str"]

MEDIA_TYPES: dict[str, Format] = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-lines": "jsonl",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
"""Content-Type → format. The first one listed for a format is what clients send."""

_SUFFIXES: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
                                ".pq": "parquet"}
_RANK: dict[str, int] = {"null": 0, "bool": 1, "int": 2, "float": 3, "str": 4}
MAX_COLUMNS = 1000
SAMPLE_ROWS = 5
SAMPLE_CHARS = 500  # a long text cell is cut in the sample (never in the data)


class Column(msgspec.Struct, kw_only=True):
    name: str
    type: ColumnType
    nullable: bool
    """Some row holds null (or an empty CSV cell), or lacks the column altogether (JSONL)."""


class Inspection(msgspec.Struct, kw_only=True):
    columns: list[Column]
    rows: int
    sample: list[dict[str, Any]]


def format_of_media_type(content_type: str | None) -> Format | None:
    if not content_type:
        return None
    return MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def format_of_path(path: str | Path) -> Format | None:
    return _SUFFIXES.get(Path(path).suffix.lower())


def _bad(line: int | None, message: str, column: str | None = None) -> InvalidInput:
    where = f"line {line}: " if line is not None else ""
    col = f"column `{column}` " if column is not None else ""
    return InvalidInput(f"{where}{col}{message}", field=column if column is not None else "$",
                        detail={"line": line, "column": column})


_TYPE_NAMES: dict[type, ColumnType] = {type(None): "null", bool: "bool", int: "int", float: "float", str: "str"}


def _not_a_cell(value: Any, line: int | None, column: str) -> InvalidInput:
    kind = "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__
    return _bad(line, f"holds {kind}; a dataset cell is a number, a string, true/false or null", column)


class _Schema:
    """Widest type per column, in first-seen order, plus the first rows as a sample.

    ``add`` runs once per row of files of millions of rows, so it looks types up by
    ``type(value)`` and only works out which columns a row lacks when it has fewer keys."""

    def __init__(self) -> None:
        self.types: dict[str, ColumnType] = {}
        self.nulls: set[str] = set()  # null somewhere, or absent from some row
        self.rows = 0
        self.sample: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any], line: int | None) -> None:
        types, rank = self.types, _RANK
        for name, value in row.items():
            t = _TYPE_NAMES.get(type(value))
            if t is None:
                raise _not_a_cell(value, line, name)
            have = types.get(name)
            if have is None:
                self._new_column(name, line)
                types[name] = t
            elif have != t and rank[t] > rank[have]:
                types[name] = t
            if t == "null":
                self.nulls.add(name)
        if len(row) < len(types):
            self.nulls.update(n for n in types if n not in row)
        self.rows += 1
        if len(self.sample) < SAMPLE_ROWS:
            self.sample.append({k: _cut(v) for k, v in row.items()})

    def _new_column(self, name: str, line: int | None) -> None:
        if not name:
            raise _bad(line, "a column has an empty name")
        if len(self.types) >= MAX_COLUMNS:
            raise _bad(line, f"more than {MAX_COLUMNS} columns", name)
        if self.rows:  # the rows before this one lacked it
            self.nulls.add(name)

    def result(self) -> Inspection:
        if self.rows == 0:
            raise _bad(None, "the dataset has no rows")
        columns = [Column(name=n, type=t, nullable=n in self.nulls) for n, t in self.types.items()]
        return Inspection(columns=columns, rows=self.rows, sample=self.sample)


def _cut(value: Any) -> Any:
    return value[:SAMPLE_CHARS] + "…" if isinstance(value, str) and len(value) > SAMPLE_CHARS else value


# ---- JSONL -------------------------------------------------------------------------------
_decode = msgspec.json.Decoder()


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb", buffering=1 << 20) as f:
        for line_no, raw in enumerate(f, 1):
            if not raw.strip():
                continue  # blank lines (a trailing newline, a separator) carry no row
            try:
                row = _decode.decode(raw)
            except msgspec.DecodeError as exc:
                raise _bad(line_no, f"is not valid JSON ({exc})") from None
            except UnicodeDecodeError:
                raise _bad(line_no, "is not valid UTF-8") from None
            if not isinstance(row, dict):
                raise _bad(line_no, f"holds a JSON {type(row).__name__}; each line must be one JSON object")
            yield line_no, row


# ---- CSV ---------------------------------------------------------------------------------
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")


def _cell(text: str) -> Any:
    """A CSV cell as the value it spells: empty → null, true/false, integers, decimals, else text."""
    if text == "":
        return None
    if text.isdigit() and text.isascii():  # the common case, without a regex
        return int(text)
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _text_lines(f: Any) -> Iterator[str]:
    """Decode line by line, so a bad byte is reported on its own line (a text-mode file decodes
    ahead in large blocks and would fail before the reader reached it)."""
    for line_no, raw in enumerate(f, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(line_no, "is not valid UTF-8") from None
        yield text.removeprefix("\ufeff") if line_no == 1 else text


def _csv_records(path: Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line the record starts on, the header, the record's cells), each checked against the header."""
    with path.open("rb", buffering=1 << 20) as f:
        reader = csv.reader(_text_lines(f))
        header: list[str] | None = None
        start = 1
        while True:
            start = reader.line_num + 1  # a quoted cell may span lines: report where the record starts
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise _bad(start, f"is not valid CSV ({exc})") from None
            if not record:
                continue
            if header is None:
                header = _header(record, start)
                continue
            if len(record) < len(header):
                missing = header[len(record)]
                raise _bad(start, f"is missing (the header names {len(header)} columns, this row holds only "
                                  f"{len(record)})", missing)
            if len(record) > len(header):
                raise _bad(start, f"has {len(record)} values but the header names {len(header)} columns")
            yield start, header, record
        if header is None:
            raise _bad(None, "the CSV is empty; its first line must name the columns")


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, header, record in _csv_records(path):
        yield line, {name: _cell(text) for name, text in zip(header, record)}


def _cell_type(text: str) -> ColumnType:
    """The type :func:`_cell` would give, without making the value."""
    if text == "":
        return "null"
    if text.isdigit() and text.isascii():
        return "int"
    if text.lower() in ("true", "false"):
        return "bool"
    if _INT.fullmatch(text):
        return "int"
    if _FLOAT.fullmatch(text):
        return "float"
    return "str"


def _inspect_csv(path: Path) -> Inspection:
    """Column by column on the raw cells: a column already ``str`` needs no more parsing."""
    types: list[ColumnType] = []
    nulls: list[bool] = []
    rows = 0
    sample: list[dict[str, Any]] = []
    header: list[str] = []
    rank = _RANK
    for _, header, record in _csv_records(path):
        if not types:
            types, nulls = ["null"] * len(header), [False] * len(header)
        for i, text in enumerate(record):
            have = types[i]
            if text == "":
                nulls[i] = True
            elif have != "str":
                t = _cell_type(text)
                if rank[t] > rank[have]:
                    types[i] = t
        rows += 1
        if len(sample) < SAMPLE_ROWS:
            sample.append({name: _cut(_cell(text)) for name, text in zip(header, record)})
    if rows == 0:
        raise _bad(None, "the dataset has no rows")
    columns = [Column(name=n, type=t, nullable=z or t == "null") for n, t, z in zip(header, types, nulls)]
    return Inspection(columns=columns, rows=rows, sample=sample)


def _header(record: list[str], line: int) -> list[str]:
    names = [c.strip() for c in record]
    seen: set[str] = set()
    for i, name in enumerate(names, 1):
        if not name:
            raise _bad(line, f"column {i} of the header has no name")
        if name in seen:
            raise _bad(line, "appears twice in the header", name)
        seen.add(name)
    if len(names) > MAX_COLUMNS:
        raise _bad(line, f"the header names more than {MAX_COLUMNS} columns")
    return names


# ---- Parquet -----------------------------------------------------------------------------
def _parquet_type(name: str, typ: Any) -> ColumnType:
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(typ):
        typ = typ.value_type
    if t.is_null(typ):
        return "null"
    if t.is_boolean(typ):
        return "bool"
    if t.is_integer(typ):
        return "int"
    if t.is_floating(typ) or t.is_decimal(typ):
        return "float"
    if t.is_string(typ) or t.is_large_string(typ) or (hasattr(t, "is_string_view") and t.is_string_view(typ)):
        return "str"
    raise _bad(None, f"has Parquet type {typ}; a dataset column holds numbers, strings, booleans or nulls "
                     "(cast it before uploading)", name)


def _parquet_file(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise _bad(None, f"the body is not a Parquet file ({exc})") from None


def _parquet_batches(path: Path) -> Iterator[Any]:
    import pyarrow as pa

    pf = _parquet_file(path)
    try:
        yield from pf.iter_batches(batch_size=8192)
    except (pa.ArrowException, OSError) as exc:
        raise _bad(None, f"the Parquet data cannot be read ({exc})") from None


def _plain(value: Any) -> Any:
    return float(value) if type(value).__name__ == "Decimal" else value


def _inspect_parquet(path: Path) -> Inspection:
    pf = _parquet_file(path)
    schema = pf.schema_arrow
    if len(schema) == 0:
        raise _bad(None, "the Parquet file has no columns")
    if len(schema) > MAX_COLUMNS:
        raise _bad(None, f"the Parquet file has more than {MAX_COLUMNS} columns")
    types = {f.name: _parquet_type(f.name, f.type) for f in schema}
    nulls: set[str] = set()
    rows = 0
    sample: list[dict[str, Any]] = []
    for batch in _parquet_batches(path):  # reads every page: a damaged one is found now, not mid-training
        rows += batch.num_rows
        for name, col in zip(batch.schema.names, batch.columns):
            if col.null_count:
                nulls.add(name)
        if len(sample) < SAMPLE_ROWS:
            sample += [{k: _cut(_plain(v)) for k, v in r.items()}
                       for r in batch.slice(0, SAMPLE_ROWS - len(sample)).to_pylist()]
    if rows == 0:
        raise _bad(None, "the dataset has no rows")
    columns = [Column(name=n, type=t, nullable=n in nulls or t == "null") for n, t in types.items()]
    return Inspection(columns=columns, rows=rows, sample=sample)


# ---- entry points ------------------------------------------------------------------------
def inspect(path: Path, fmt: Format) -> Inspection:
    """Validate the whole file and describe it; InvalidInput at its first bad row."""
    if fmt == "parquet":
        return _inspect_parquet(path)
    if fmt == "csv":
        return _inspect_csv(path)
    schema = _Schema()
    for line, row in _jsonl_rows(path):
        schema.add(row, line)
    return schema.result()


def iter_rows(path: Path, fmt: Format) -> Iterator[dict[str, Any]]:
    """Every row as a dict, streamed: what training code reads a stored dataset with."""
    if fmt == "parquet":
        for batch in _parquet_batches(path):
            for r in batch.to_pylist():
                yield {k: _plain(v) for k, v in r.items()}
        return
    for _, row in _jsonl_rows(path) if fmt == "jsonl" else _csv_rows(path):
        yield row

