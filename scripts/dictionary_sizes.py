#!/usr/bin/env python3
"""What a sealed file of spans would weigh at other dictionary limits.

Rewrites one sealed spans file with pyarrow, zstd level 3 and row groups
of 131,072 rows as Seam writes them, once per dictionary page limit, and
once with the time columns left without a dictionary, and prints bytes
per span for each. pyarrow's pages differ from Seam's, so compare the
rows with each other, not with the file's own size.

    python3 -m venv /tmp/pa && /tmp/pa/bin/pip install pyarrow
    /tmp/pa/bin/python scripts/dictionary_sizes.py <data_dir>/segments/spans/<file>.parquet
"""
import os
import sys
import tempfile

import pyarrow.parquet as pq

NO_DICTIONARY = ("span_id", "parent_span_id")
TIMES = ("start_time", "end_time")


def main():
    source = sys.argv[1]
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
        for name, limit, columns in settings:
            path = os.path.join(out, "spans.parquet")
            pq.write_table(
                table,
                path,
                compression="zstd",
                compression_level=3,
                row_group_size=131072,
                write_page_index=True,
                use_dictionary=columns,
                dictionary_pagesize_limit=limit,
            )
            print(f"{name:24s} {os.path.getsize(path) / rows:6.2f} bytes a span")


if __name__ == "__main__":
    main()
