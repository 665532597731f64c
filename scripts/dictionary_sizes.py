#!/usr/bin/env python3
"""What a sealed file of spans would weigh at other dictionary limits,
or (with --pages) at other data page sizes.

Rewrites one sealed spans file with pyarrow, zstd level 3 and row groups
of 131,072 rows as Seam writes them, once per dictionary page limit, and
once with the time columns left without a dictionary, and prints bytes
per span for each. With --pages, once per data page size instead, and
prints the attribute values' bytes a span beside the file's. pyarrow's
pages differ from Seam's, so compare the rows with each other, not with
the file's own size.

    python3 -m venv /tmp/pa && /tmp/pa/bin/pip install pyarrow
    /tmp/pa/bin/python scripts/dictionary_sizes.py <data_dir>/segments/spans/<file>.parquet
    /tmp/pa/bin/python scripts/dictionary_sizes.py --pages <file>.parquet
"""
import os
import sys
import tempfile

import pyarrow.parquet as pq

NO_DICTIONARY = ("span_id", "parent_span_id")
TIMES = ("start_time", "end_time")


def column_bytes(path, name):
    """Compressed bytes of the leaf column `name` over every row group."""
    meta = pq.ParquetFile(path).metadata
    return sum(
        meta.row_group(g).column(c).total_compressed_size
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
        if meta.row_group(g).column(c).path_in_schema == name
    )


def rewrite(table, path, **settings):
    """`table` written as Seam writes spans (zstd 3, row groups of
    131,072 rows, a page index), with `settings` on top."""
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=3,
        row_group_size=131072,
        write_page_index=True,
        **settings,
    )


def pages(table, rows, out):
    for size in (1024 * 1024, 96 * 1024, 32 * 1024, 16 * 1024):
        path = os.path.join(out, "spans.parquet")
        rewrite(table, path, dictionary_pagesize_limit=8 * 1024, data_page_size=size)
        values = column_bytes(path, "attributes.entries.values") or column_bytes(
            path, "attributes.key_value.value"
        )
        print(
            f"pages of {size // 1024:5d} KiB  {os.path.getsize(path) / rows:6.2f} bytes a span, "
            f"attribute values {values / rows:5.2f}"
        )


def main():
    by_page = "--pages" in sys.argv[1:]
    source = [a for a in sys.argv[1:] if a != "--pages"][0]
    table = pq.read_table(source)
    rows = table.num_rows
    print(f"{source}: {rows:,} spans, {os.path.getsize(source) / rows:.2f} bytes a span as sealed")
    dictionary = [c for c in table.column_names if c not in NO_DICTIONARY]
    settings = [
        ("64 KiB", 64 * 1024, dictionary),
        ("16 KiB", 16 * 1024, dictionary),
        ("8 KiB", 8 * 1024, dictionary),
        ("64 KiB, times without", 64 * 1024, [c for c in dictionary if c not in TIMES]),
        ("8 KiB, times without", 8 * 1024, [c for c in dictionary if c not in TIMES]),
    ]
    with tempfile.TemporaryDirectory() as out:
        if by_page:
            pages(table, rows, out)
            return
        for name, limit, columns in settings:
            path = os.path.join(out, "spans.parquet")
            rewrite(table, path, use_dictionary=columns, dictionary_pagesize_limit=limit)
            print(f"{name:24s} {os.path.getsize(path) / rows:6.2f} bytes a span")


if __name__ == "__main__":
    main()
