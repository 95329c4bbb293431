"""Deterministic raw sales data for scripts/bench.

One CSV and one Parquet file per day with the same rows, shuffled. About 5% of the rows repeat
an earlier order of the same day with a later `updated_at` and other values, so a contender
that keeps the wrong row of a key ends with different sums (the bench checks them).

    python generate.py OUT --days 3 --rows 100000 --seed 7
"""

import argparse
import datetime
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FIRST_DAY = datetime.date(2024, 1, 1)
DUPLICATE_SHARE = 0.05


def day_table(rng: np.random.Generator, day: datetime.date, rows: int, first_id: int) -> pa.Table:
    duplicates = int(rows * DUPLICATE_SHARE)
    originals = rows - duplicates
    order_id = np.arange(first_id, first_id + originals, dtype=np.int64)
    midnight = np.datetime64(day.isoformat(), "s").astype(np.int64)
    updated = midnight + rng.integers(0, 86_400, originals)
    # A later version of randomly chosen orders of the day, with other values.
    repeated = rng.choice(originals, duplicates, replace=False)
    order_id = np.concatenate([order_id, order_id[repeated]])
    updated = np.concatenate([updated, updated[repeated] + rng.integers(1, 3_600, duplicates)])
    order = rng.permutation(rows)
    sku_numbers = rng.integers(0, 50_000, rows)
    table = pa.table(
        {
            "order_id": order_id[order],
            "customer_id": rng.integers(1, 2_000_000, rows, dtype=np.int64),
            "sku": pc.binary_join_element_wise("SKU-", pc.utf8_lpad(pa.array(sku_numbers).cast(pa.string()), 5, "0"), ""),
            "quantity": rng.integers(1, 20, rows, dtype=np.int64),
            "unit_price": np.round(rng.uniform(0.5, 500.0, rows), 2),
            "updated_at": pa.array(updated[order].astype("datetime64[s]")).cast(pa.timestamp("us", tz="UTC")),
            "date": pa.array([day] * rows, pa.date32()),
        }
    )
    return table


def write_day(out: pathlib.Path, table: pa.Table, day: datetime.date) -> None:
    (out / "csv").mkdir(parents=True, exist_ok=True)
    (out / "parquet").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "parquet" / f"{day}.parquet")
    # ISO 8601 with a `Z`, as exports from most systems look, and no quoting.
    seconds = table["updated_at"].cast(pa.timestamp("s", tz="UTC"))
    text = table.set_column(
        table.schema.get_field_index("updated_at"),
        "updated_at",
        pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ"),
    )
    path = out / "csv" / f"{day}.csv"
    path.write_text(",".join(table.column_names) + "\n")
    with path.open("ab") as sink:
        pacsv.write_csv(text, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--rows", type=int, required=True, help="raw rows per day")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--first-day", type=datetime.date.fromisoformat, default=FIRST_DAY)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for index in range(args.days):
        day = args.first_day + datetime.timedelta(days=index)
        write_day(args.out, day_table(rng, day, args.rows, 1 + index * args.rows), day)


if __name__ == "__main__":
    main()
