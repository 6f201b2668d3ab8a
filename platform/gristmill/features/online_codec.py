"""Feast's online-store bytes, computed a column at a time (numpy + pyarrow) instead of a protobuf
per value.

Feast stores each feature value as a serialized ``feast.types.Value`` protobuf and keys every row by
its entity key serialized in version 3 (``serialize_entity_key``). The encoders here produce the
same bytes as Feast's own writer (``_columns_to_proto_values`` + ``SerializeToString``) for the
value types Gristmill's feature tables hold: Int64, Float64, String, Bool and UnixTimestamp, a
null (and a NaN double, which Feast treats as missing) being the empty message ``b""``. The tests
compare them byte for byte with Feast's serializer.
"""

from __future__ import annotations

import struct

#: protobuf tags of the ``feast.types.Value`` oneof members (field number << 3 | wire type)
TAG_STRING, TAG_INT64, TAG_DOUBLE, TAG_BOOL, TAG_UNIX_TS = 0x12, 0x20, 0x29, 0x38, 0x40
VALUE_TYPE_STRING = 2  # feast.types.ValueType.STRING
KINDS = ("Int64", "Float64", "String", "Bool", "UnixTimestamp")
#: entities a bulk writer encodes and sends at a time: bounds memory (~60 MB a chunk of 10
#: features) and the replies Redis buffers
CHUNK = 50_000


def _binary(rows, lengths):
    """A pyarrow binary array whose row i is ``rows[i, :lengths[i]]`` (rows: uint8 matrix)."""
    import numpy as np
    import pyarrow as pa

    n, width = rows.shape
    data = rows[np.arange(width)[None, :] < lengths[:, None]]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _varints(values, tag: int | None):
    """Protobuf varints of int64 ``values`` (two's complement, as protobuf encodes int64), each
    preceded by ``tag`` when given: an (n, 11) uint8 matrix and the byte length of each row."""
    import numpy as np

    u = values.astype(np.int64).view(np.uint64)
    n = len(u)
    nbytes = np.ones(n, dtype=np.int64)
    for k in range(1, 10):
        nbytes += (u >> np.uint64(7 * k)) > 0
    lead = 0 if tag is None else 1
    rows = np.zeros((n, 10 + lead), dtype=np.uint8)
    if tag is not None:
        rows[:, 0] = tag
    for k in range(10):
        group = ((u >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        rows[:, lead + k] = group | np.where(k < nbytes - 1, 0x80, 0).astype(np.uint8)
    return rows, nbytes + lead


def value_bytes(array, kind: str):
    """Serialized ``feast.types.Value`` of every element of the pyarrow ``array`` as Feast writes
    it for a field of Feast type ``kind`` (one of :data:`KINDS`); nulls give ``b""``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    if kind == "Float64":
        x = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        rows = np.empty((n, 9), dtype=np.uint8)
        rows[:, 0] = TAG_DOUBLE
        rows[:, 1:] = np.ascontiguousarray(x).view(np.uint8).reshape(n, 8)
        lengths = np.where(np.isnan(x), 0, 9)  # a null reads back as NaN; Feast writes both as b""
        return _binary(rows, lengths)
    if kind == "Bool":
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        x = pc.fill_null(array, False).to_numpy(zero_copy_only=False)
        rows = np.empty((n, 2), dtype=np.uint8)
        rows[:, 0], rows[:, 1] = TAG_BOOL, x
        return _binary(rows, np.where(valid, 2, 0))
    if kind in ("Int64", "UnixTimestamp"):
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        if kind == "UnixTimestamp":
            secs = pc.fill_null(pc.cast(pc.cast(array, pa.timestamp("us", "UTC")), pa.int64()), 0)
            secs = secs.to_numpy(zero_copy_only=False)
            ints = np.where(valid, secs // 10**6, np.iinfo(np.int64).min)  # floor; a null: NaT
            valid = np.ones(n, dtype=bool)
            rows, lengths = _varints(ints, TAG_UNIX_TS)
        else:
            ints = pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False)
            rows, lengths = _varints(ints, TAG_INT64)
        return _binary(rows, np.where(valid, lengths, 0))
    if kind == "String":
        text = pc.cast(array, pa.large_string())
        valid = text.is_valid().to_numpy(zero_copy_only=False)
        sizes = pc.fill_null(pc.binary_length(text), 0).to_numpy(zero_copy_only=False)
        rows, lengths = _varints(sizes, TAG_STRING)
        head = _binary(rows, np.where(valid, lengths, 0))
        body = pc.fill_null(pc.cast(text, pa.large_binary()), b"")
        return pc.binary_join_element_wise(head, body, pa.scalar(b"", pa.large_binary()))
    raise ValueError(f"no online encoding for Feast type {kind!r} (supported: {', '.join(KINDS)})")


def value_texts(array, kind: str) -> list:
    """The ``value_text`` column Feast's SQLite store writes beside each value: ``str()`` of the
    number or bool, the string itself, None for nulls, NaN doubles and timestamps."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "UnixTimestamp":
        return [None] * len(array)
    if kind == "String":
        return pc.cast(array, pa.large_string()).to_pylist()
    if kind == "Float64":
        x = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        out = list(map(repr, x.tolist()))  # Python's own str(): arrow's and numpy's formats differ
        for i in np.flatnonzero(np.isnan(x)).tolist():
            out[i] = None
        return out
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    if kind == "Bool":
        x = pc.fill_null(array, False).to_numpy(zero_copy_only=False)
        out = np.where(x, "True", "False").astype(object)
    else:
        out = pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False).astype(str).astype(object)
    out[~valid] = None
    return out.tolist()


def entity_keys(ids, join_key: str):
    """``serialize_entity_key`` (version 3) of one string join key ``join_key`` for every id."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    name = join_key.encode("utf8")
    head = struct.pack("<III", 1, VALUE_TYPE_STRING, len(name)) + name + struct.pack("<I", VALUE_TYPE_STRING)
    text = pc.cast(ids, pa.large_string())
    if text.null_count:
        raise ValueError(f"entity key {join_key!r} has {text.null_count} null values")
    sizes = pc.binary_length(text).to_numpy(zero_copy_only=False).astype("<u4")
    size_bytes = _binary(sizes.view(np.uint8).reshape(-1, 4), np.full(len(sizes), 4))
    return pc.binary_join_element_wise(pa.scalar(head, pa.large_binary()), size_bytes,
                                       pc.cast(text, pa.large_binary()),
                                       pa.scalar(b"", pa.large_binary()))


TAG_REPEATED = 0x0A  # feast.types.RepeatedValue.val: field 1, length-delimited


def packed_values(columns):
    """Per row, the serialized ``feast.types.RepeatedValue`` of that row's values in ``columns``
    (each an array of serialized ``Value`` bytes, as :func:`value_bytes` gives), in that order.
    ``RepeatedValue.FromString(b).val`` reads them back, a null being the empty ``Value``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    empty = pa.scalar(b"", pa.large_binary())
    pieces = []
    for col in columns:
        col = pc.cast(col, pa.large_binary())
        sizes = pc.binary_length(col).to_numpy(zero_copy_only=False)
        rows, lengths = _varints(sizes, TAG_REPEATED)
        pieces += [_binary(rows, lengths), col]
    if not pieces:
        raise ValueError("packed_values needs at least one column")
    return pc.binary_join_element_wise(*pieces, empty)


def feast_kind(dtype) -> str:
    """The codec's name of a Feast field type (``Float64`` ...); raises for the ones it lacks."""
    name = str(dtype)
    if name not in KINDS:
        raise ValueError(f"no bulk online encoding for Feast type {name} (supported: {', '.join(KINDS)})")
    return name


def sorted_by_key(frame, join_key: str):
    """``frame`` with its entity keys serialized (column ``__ek``), sorted by them."""
    import pyarrow.compute as pc

    frame = frame.append_column("__ek", entity_keys(frame.column(join_key), join_key))
    return frame.take(pc.sort_indices(frame, [("__ek", "ascending")]))


def encodable(table) -> bool:
    return all(str(f.dtype) in KINDS for f in table.features)
