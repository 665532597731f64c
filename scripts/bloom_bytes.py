#!/usr/bin/env python3
"""Bytes the bloom filters of sealed files take, per row: what Seam keeps
in memory to rule files out of a lookup by key.

Reads each file's footer (Thrift compact protocol, parsed here with the
standard library, since pyarrow does not expose bloom filter lengths) and
sums `bloom_filter_length` over every column chunk.

    python3 scripts/bloom_bytes.py <data_dir>/segments/spans/*.parquet
"""
import struct
import sys


def varint(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def zigzag(n):
    return (n >> 1) ^ -(n & 1)


class Compact:
    """Just enough of Thrift's compact protocol to walk a footer."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def struct(self):
        fields, last = {}, 0
        while True:
            header = self.data[self.at]
            self.at += 1
            if header == 0:
                return fields
            kind, delta = header & 0x0F, header >> 4
            if delta:
                last += delta
            else:
                raw, self.at = varint(self.data, self.at)
                last = zigzag(raw)
            fields[last] = self.value(kind)

    def value(self, kind):
        if kind in (1, 2):
            return kind == 1
        if kind == 3:
            self.at += 1
            return self.data[self.at - 1]
        if kind in (4, 5, 6):
            raw, self.at = varint(self.data, self.at)
            return zigzag(raw)
        if kind == 7:
            self.at += 8
            return None
        if kind == 8:
            length, self.at = varint(self.data, self.at)
            self.at += length
            return None
        if kind in (9, 10):
            header = self.data[self.at]
            self.at += 1
            count, element = header >> 4, header & 0x0F
            if count == 15:
                count, self.at = varint(self.data, self.at)
            return [self.value(element) for _ in range(count)]
        if kind == 11:
            count, self.at = varint(self.data, self.at)
            if not count:
                return []
            kinds = self.data[self.at]
            self.at += 1
            return [(self.value(kinds >> 4), self.value(kinds & 0x0F)) for _ in range(count)]
        if kind == 12:
            return self.struct()
        raise ValueError(f"unknown compact type {kind}")


def main():
    filters = rows = 0
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            data = f.read()
        length = struct.unpack("<I", data[-8:-4])[0]
        # FileMetaData: 3 num_rows, 4 row_groups; RowGroup: 1 columns;
        # ColumnChunk: 3 meta_data; ColumnMetaData: 15 bloom_filter_length.
        footer = Compact(data[-8 - length : -8]).struct()
        rows += footer[3]
        for group in footer[4]:
            for chunk in group[1]:
                filters += chunk.get(3, {}).get(15, 0)
    print(f"{len(sys.argv) - 1} files, {rows:,} rows, bloom filters {filters:,} bytes, "
          f"{filters / max(rows, 1):.3f} bytes a row")


if __name__ == "__main__":
    main()
