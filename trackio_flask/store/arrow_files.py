"""Arrow IPC files of one run's columns, read back memory-mapped (no copy, shared by workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

BASE = ("id", "step", "time")


def write_columns(path: Path, ids: np.ndarray, steps: np.ndarray, times: np.ndarray,
                  metrics: list[np.ndarray]) -> None:
    """One record batch: id, step, time, then the metrics as m0, m1… (names live in the
    manifest, so any logged name is fine)."""
    arrays = [pa.array(np.ascontiguousarray(ids, dtype=np.int64)),
              pa.array(np.ascontiguousarray(steps, dtype=np.float64)),
              pa.array(np.ascontiguousarray(times, dtype=np.float64))]
    arrays += [pa.array(np.ascontiguousarray(m, dtype=np.float64)) for m in metrics]
    names = [*BASE, *(f"m{i}" for i in range(len(metrics)))]
    table = pa.Table.from_arrays(arrays, names=names)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_columns(path: Path, metrics: int, rows: int) -> list[np.ndarray]:
    """[ids, steps, times, m0…] as read-only numpy views of the mapped file; ValueError when
    the file does not hold what the manifest says (a torn or foreign file)."""
    source = pa.memory_map(str(path))
    try:
        table = pa.ipc.open_file(source).read_all()
    finally:
        source.close()  # the mapping lives on in the buffers; the descriptor is not needed
    if table.num_rows != rows or table.num_columns != 3 + metrics:
        raise ValueError(f"{path.name}: {table.num_rows} rows, {table.num_columns} columns")
    out = []
    for column in table.columns:
        if column.num_chunks != 1:
            column = pa.chunked_array([pa.concat_arrays(column.chunks)])
        out.append(column.chunk(0).to_numpy(zero_copy_only=True) if rows else
                   np.empty(0, dtype=column.type.to_pandas_dtype()))
    return out


RICH_NAMES = ("row_id", "run", "step", "time", "key", "kind")


def write_rich(path: Path, refs: list[tuple]) -> None:
    """Where rich values (images, tables…) were logged: (row_id, run, step, time, key, kind)."""
    columns = list(zip(*refs, strict=True)) if refs else [[] for _ in RICH_NAMES]
    types = [pa.int64(), pa.string(), pa.float64(), pa.float64(), pa.string(), pa.string()]
    table = pa.Table.from_arrays([pa.array(list(c), type=t) for c, t in zip(columns, types,
                                                                           strict=True)],
                                 names=list(RICH_NAMES))
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_rich(path: Path, rows: int) -> list[tuple]:
    source = pa.memory_map(str(path))
    try:
        table = pa.ipc.open_file(source).read_all()
    finally:
        source.close()
    if table.num_rows != rows:
        raise ValueError(f"{path.name}: {table.num_rows} rich rows, expected {rows}")
    return list(zip(*(table.column(name).to_pylist() for name in RICH_NAMES), strict=True))
