"""Rows to typed records by column name, never by position.

A reader is built once per record type: it checks that every field of the dataclass names a
column of the table and looks the columns up in each row by their `Column` objects, so it reads
a row of `select(table)` and a row of a join (where two tables both have `id`) alike, whatever
order the columns come in. Looking the columns up once, not per row, keeps it within about
twice the cost of building records by position.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Row, Table

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    RecordT = TypeVar("RecordT", bound=DataclassInstance)
else:
    RecordT = TypeVar("RecordT")

Converter = Callable[[Any], Any]


def row_reader(
    table: Table, record: type[RecordT], *, convert: Mapping[str, Converter] | None = None
) -> Callable[[Row[Any]], RecordT]:
    """A function building `record` from a row holding `table`'s columns.

    `convert` turns a column's value into the field's type (e.g. a `StrEnum`); a NULL stays
    None. A field that names no column, or a conversion for no field, is an error here, when
    the reader is built, not when the first row is read.
    """
    fields = dataclasses.fields(record)
    if any(field.kw_only or not field.init for field in fields):
        raise ValueError(f"{record.__name__}: a reader passes every field by position")
    names = [field.name for field in fields]
    missing = [name for name in names if name not in table.c]
    if missing:
        raise ValueError(f"{record.__name__}: no column {', '.join(missing)} in {table.name}")
    conversions = dict(convert or {})
    unknown = sorted(set(conversions) - set(names))
    if unknown:
        raise ValueError(f"{record.__name__}: no field {', '.join(unknown)} to convert")
    columns = [table.c[name] for name in names]
    get = itemgetter(*columns) if len(columns) > 1 else (lambda m: (m[columns[0]],))
    converted = [(i, conversions[name]) for i, name in enumerate(names) if name in conversions]

    def read(row: Row[Any]) -> RecordT:
        values = list(get(row._mapping))
        for i, to_type in converted:
            if values[i] is not None:
                values[i] = to_type(values[i])
        return record(*values)

    return read
