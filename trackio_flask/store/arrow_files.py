"""Arrow IPC files of one run's columns with room to grow, mapped shared and writable.

A file holds `capacity` rows (NaN past the run's length); the manifest says how many are the
run's. Workers write a live run's new rows into the room left, through a shared mapping, so
every worker's copy of the run is the same page cache; the manifest then commits the length.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import pyramid

BASE = ("id", "step", "time")


def padded(values: np.ndarray, capacity: int, dtype, fill) -> np.ndarray:
    out = np.full(capacity, fill, dtype=dtype)
    out[: values.size] = values
    return out


def write_columns(path: Path, ids: np.ndarray, steps: np.ndarray, times: np.ndarray,
                  metrics: list[np.ndarray], capacity: int) -> None:
    """One record batch of `capacity` rows: id, step, time, then the metrics as m0, m1…
    (names live in the manifest, so any logged name is fine)."""
    arrays = [pa.array(padded(ids, capacity, np.int64, 0)),
              pa.array(padded(steps, capacity, np.float64, math.nan)),
              pa.array(padded(times, capacity, np.float64, math.nan))]
    arrays += [pa.array(padded(m, capacity, np.float64, math.nan)) for m in metrics]
    names = [*BASE, *(f"m{i}" for i in range(len(metrics)))]
    table = pa.Table.from_arrays(arrays, names=names)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def map_columns(path: Path, metrics: int, capacity: int) -> list[np.ndarray]:
    """[ids, steps, times, m0…] of `capacity` rows each: writable views of one shared mapping
    of the file. ValueError when the file does not hold what the manifest says."""
    return _map(path, 3 + metrics, capacity, first_int=True)


def write_pyramid(path: Path, stats: list[dict[str, np.ndarray]]) -> None:
    """A run file's pyramids (store/pyramid.py): lo, hi, n, odd of each metric, in file order."""
    arrays = [pa.array(series[name]) for series in stats for name in pyramid.STATS]
    names = [f"{name}{i}" for i in range(len(stats)) for name in pyramid.STATS]
    table = pa.Table.from_arrays(arrays, names=names)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def map_pyramid(path: Path, metrics: int, capacity: int) -> list[dict[str, np.ndarray]]:
    """The pyramids of a run file's metrics as writable views of one shared mapping."""
    arrays = _map(path, len(pyramid.STATS) * metrics, pyramid.size(capacity), first_int=False)
    width = len(pyramid.STATS)
    return [dict(zip(pyramid.STATS, arrays[i * width:(i + 1) * width], strict=True))
            for i in range(metrics)]


def _map(path: Path, columns: int, capacity: int, first_int: bool) -> list[np.ndarray]:
    source = pa.memory_map(str(path))
    try:
        whole = source.read_buffer()
        source.seek(0)
        table = pa.ipc.open_file(source).read_all()
        if table.num_rows != capacity or table.num_columns != columns:
            raise ValueError(f"{path.name}: {table.num_rows} rows, {table.num_columns} columns")
        spans = []
        for column in table.columns:
            if column.num_chunks != 1 or column.null_count:
                raise ValueError(f"{path.name}: not one dense chunk per column")
            data = column.chunk(0).buffers()[1]
            spans.append((data.address - whole.address, column.type.byte_width))
        del table, whole
    finally:
        source.close()
    mapped = np.memmap(path, dtype=np.uint8, mode="r+")
    out = []
    for index, (offset, width) in enumerate(spans):
        if offset % 8 or offset + width * capacity > mapped.size:
            raise ValueError(f"{path.name}: column {index} is not where Arrow put it")
        dtype = np.int64 if index == 0 and first_int else np.float64
        # Plain ndarrays over the mapping (it stays alive as their base): numpy.memmap's
        # subclass would tag every slice and result, at a cost per operation.
        out.append(np.frombuffer(mapped, dtype=dtype, count=capacity, offset=offset))
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
