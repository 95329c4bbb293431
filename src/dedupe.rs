//! Deduplication and ordering of a bucket's rows: one row per key (the latest by `order_by`),
//! ordered by day, then key. A large bucket is cut into one key range per core.

use arrow::array::{ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::SortOptions;
use arrow::compute::take_record_batch;
use arrow::datatypes::{Date32Type, SchemaRef};
use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::rows::{encode_rows, encode_rows_of, hash};
use crate::rules::RowRules;
use crate::scope::date_from_days;

/// A bucket of at least this many rows per core is deduplicated and ordered on every core.
const ROWS_PER_PART: usize = 128 * 1024;

/// One row per key (the largest `order_by` wins, then the largest whole row), ordered by
/// partition, then key (without a key: partition, then whole row). Nothing here looks at the
/// order rows arrived in.
///
/// A large bucket is cut into one part per core by ranges of the key (of the whole row,
/// without a key), each deduplicated and ordered on a core of its own: a key never spans two
/// parts, and every key of a part sorts before every key of the next. So the parts' rows of
/// one day, taken part after part, are that day's rows in order. Returns the parts in order.
pub(crate) fn dedup_and_order(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    rules: &RowRules,
) -> Result<Vec<RecordBatch>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let parts = cores.min(rows / ROWS_PER_PART).max(1);
    dedup_and_order_in(&Bucket::new(schema, batches), rules, parts)
}

fn dedup_and_order_in(bucket: &Bucket, rules: &RowRules, parts: usize) -> Result<Vec<RecordBatch>> {
    let ascending = SortOptions::default();
    // The rows of each part in output order, found before any row is copied: the encodings
    // are dropped first, so that they and the copies are never in memory together.
    let ordered = if rules.key.is_empty() {
        let mut output_order = vec![(rules.partition_column.as_str(), ascending)];
        output_order.extend(
            bucket
                .schema
                .fields()
                .iter()
                .map(|f| (f.name().as_str(), ascending)),
        );
        let whole = bucket.encode(&output_order)?;
        let split = split_by_range(whole.num_rows(), parts, |row| prefix(&whole, row))?;
        on_every_core(split, |rows| Ok(sort_by_encoding(&whole, rows)))?
    } else {
        let rank = Rank::of(bucket, rules, parts)?;
        let days: Vec<i32> = bucket
            .column(&rules.partition_column)
            .iter()
            .flat_map(|days| days.as_primitive::<Date32Type>().values().iter().copied())
            .collect();
        let split = split_by_range(bucket.num_rows(), parts, |row| rank.key_prefix(row))?;
        on_every_core(split, |rows| {
            // The winners come in key order and keys are now unique, so a stable sort by
            // day gives the (partition, key) order without comparing rows again.
            let mut winners = latest_per_key(bucket, &rank, rows)?;
            winners.sort_by_key(|&row| days[row as usize]);
            Ok(winners)
        })?
    };
    on_every_core(ordered, |rows| bucket.take(&rows))
}

/// The conformed rows of a bucket as the store holds them, in batches: a row is named by its
/// index in all of them, one batch after the other. Not combined into one batch, which would
/// copy every row once more before deduplication copies the winners.
struct Bucket {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// The index of each batch's first row.
    starts: Vec<usize>,
}

impl Bucket {
    fn new(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let starts = batches
            .iter()
            .scan(0, |next, batch| {
                let start = *next;
                *next += batch.num_rows();
                Some(start)
            })
            .collect();
        Self {
            schema: schema.clone(),
            batches,
            starts,
        }
    }

    /// The column `name` of each batch: `conform` guarantees the rules' columns are there.
    fn column(&self, name: &str) -> Vec<ArrayRef> {
        let index = self.schema.index_of(name).expect("conformed column");
        self.batches
            .iter()
            .map(|b| b.column(index).clone())
            .collect()
    }

    /// Every row's encoding by these columns, in row order.
    fn encode(&self, columns: &[(&str, SortOptions)]) -> Result<arrow::row::Rows> {
        let columns: Vec<(Vec<ArrayRef>, SortOptions)> = columns
            .iter()
            .map(|&(name, options)| (self.column(name), options))
            .collect();
        encode_rows_of(&columns)
    }

    fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Whether column `name` is integer-like (integers, dates, timestamps, times, durations)
    /// without nulls, so that [`Bucket::bits`] takes it.
    fn has_bits(&self, name: &str) -> bool {
        self.column(name)
            .iter()
            .all(|piece| piece.null_count() == 0 && has_ordered_bits(piece.data_type()))
    }

    /// Every row's value of column `name` (one [`Bucket::has_bits`] takes) as 64 bits that
    /// order as the values do, taken on `parts` cores, a run of batches each.
    fn bits(&self, name: &str, parts: usize) -> Result<Vec<u64>> {
        let column = self.column(name);
        let (total, parts) = (self.num_rows(), parts.max(1));
        let mut bits = vec![0u64; total];
        // Consecutive runs of batches of about the same number of rows, a core each.
        let mut runs = Vec::new();
        let mut rest = bits.as_mut_slice();
        let mut batch = 0;
        for part in 0..parts {
            let wanted = (part + 1) * total / parts;
            let first = batch;
            let mut rows = 0;
            while batch < self.batches.len() && self.starts[batch] < wanted {
                rows += self.batches[batch].num_rows();
                batch += 1;
            }
            let (run, tail) = rest.split_at_mut(rows);
            runs.push((run, first..batch));
            rest = tail;
        }
        on_every_core(runs, |(run, batches)| {
            let mut at = 0;
            for batch in batches {
                let rows = self.batches[batch].num_rows();
                put_ordered_bits(&mut run[at..at + rows], column[batch].as_ref());
                at += rows;
            }
            Ok(())
        })?;
        Ok(bits)
    }

    /// These rows, in this order.
    fn take(&self, rows: &[u32]) -> Result<RecordBatch> {
        if let [only] = self.batches.as_slice() {
            return take_record_batch(only, &UInt32Array::from(rows.to_vec()))
                .map_err(|e| Error::internal("deduplicating and ordering rows", e));
        }
        let at: Vec<(usize, usize)> = rows
            .iter()
            .map(|&row| {
                let row = row as usize;
                let batch = self.starts.partition_point(|&start| start <= row) - 1;
                (batch, row - self.starts[batch])
            })
            .collect();
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        match batches.is_empty() {
            true => Ok(RecordBatch::new_empty(self.schema.clone())),
            false => arrow::compute::interleave_record_batch(&batches, &at)
                .map_err(|e| Error::internal("deduplicating and ordering rows", e)),
        }
    }
}

/// Runs `work` on each item, one thread per item, and returns the results in item order.
fn on_every_core<I: Send, T: Send>(
    items: Vec<I>,
    work: impl Fn(I) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(|| work(item)))
            .collect();
        threads
            .into_iter()
            // A panic is a bug: raised again, as `Error::rejoin` does for tasks.
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
            .collect()
    })
}

/// About this many rows are sampled to place the cuts between parts.
const CUT_SAMPLE: usize = 16 * 1024;

/// The `count` rows cut into `parts` ranges of their 16-byte prefixes (of their keys'
/// encodings, as `prefix` gives them), as even as equal prefixes allow; rows with equal
/// prefixes (every row of one key) share a range. The cuts are quantiles of the prefixes of a
/// sample of the rows, those whose prefix hashes to a multiple of a stride: so they depend on
/// the rows alone, not on their order, and a key's rows are all sampled or none. The rows are
/// sorted into the ranges on every core, a slice of them each.
fn split_by_range(
    count: usize,
    parts: usize,
    prefix: impl Fn(usize) -> u128 + Sync,
) -> Result<Vec<Vec<u32>>> {
    if parts <= 1 {
        return Ok(vec![(0..count as u32).collect()]);
    }
    let stride = (count / CUT_SAMPLE).max(1) as u64;
    let slices: Vec<std::ops::Range<usize>> = (0..parts)
        .map(|slice| slice * count / parts..(slice + 1) * count / parts)
        .collect();
    let samples = on_every_core(slices.clone(), |slice| {
        Ok(slice
            .map(&prefix)
            .filter(|prefix| hash(&prefix.to_be_bytes()).is_multiple_of(stride))
            .collect::<Vec<u128>>())
    })?;
    let mut sample = samples.concat();
    let sampled = sample.len();
    let mut cuts: Vec<u128> = match sampled {
        0 => Vec::new(),
        _ => (1..parts)
            .map(|part| *sample.select_nth_unstable(part * sampled / parts).1)
            .collect(),
    };
    drop(sample);
    cuts.dedup();
    let sorted = on_every_core(slices, |slice| {
        let mut ranges = vec![Vec::with_capacity(slice.len() / parts + 1); cuts.len() + 1];
        for row in slice {
            let prefix = prefix(row);
            ranges[cuts.partition_point(|&cut| cut <= prefix)].push(row as u32);
        }
        Ok(ranges)
    })?;
    let mut ranges: Vec<Vec<u32>> = (0..=cuts.len())
        .map(|range| {
            let rows = sorted.iter().map(|slices| slices[range].len()).sum();
            let mut joined = Vec::with_capacity(rows);
            for slices in &sorted {
                joined.extend_from_slice(&slices[range]);
            }
            joined
        })
        .collect();
    ranges.retain(|range| !range.is_empty());
    Ok(ranges)
}

/// `order_by`'s order in a rank, and the whole row's among ties: the latest (largest) first,
/// nulls last.
const LATEST_FIRST: SortOptions = SortOptions {
    descending: true,
    nulls_first: false,
};

/// How rows are ranked: by key, then the latest `order_by` first.
enum Rank {
    /// A key of one integer-like column and an integer-like `order_by` (or none), both
    /// without nulls, as 64 bits a row each that order as the values do: rows are sorted by
    /// their key's bits alone, and only a key's rows compare `order_by`. For the common
    /// `--key id --order-by updated_at` this spares Arrow's row format of both (16 ms of the
    /// day's deduplication, on one core) and halves the sort's memory traffic: entries of 16
    /// bytes (key, row) instead of 32 (a 16-byte rank and the row, aligned).
    Bits {
        key: Vec<u64>,
        order_by: Option<Vec<u64>>,
    },
    /// Arrow's row format of the key and `order_by` columns, `order_by` inverted.
    Encoded { rank: arrow::row::Rows, keys: Keys },
}

impl Rank {
    /// Every row's rank in `bucket` by the rules' key and `order_by`: as bits when they take
    /// them, else encoded.
    fn of(bucket: &Bucket, rules: &RowRules, parts: usize) -> Result<Rank> {
        let order_by = rules.order_by.as_deref();
        if let [key] = rules.key.as_slice()
            && bucket.has_bits(key)
            && order_by.is_none_or(|name| bucket.has_bits(name))
        {
            return Ok(Rank::Bits {
                key: bucket.bits(key, parts)?,
                order_by: order_by.map(|name| bucket.bits(name, parts)).transpose()?,
            });
        }
        let ascending = SortOptions::default();
        let keys: Vec<(&str, SortOptions)> =
            rules.key.iter().map(|k| (k.as_str(), ascending)).collect();
        let mut ranking = keys.clone();
        ranking.extend(order_by.map(|name| (name, LATEST_FIRST)));
        Ok(match key_width(&bucket.schema, &rules.key) {
            Some(width) => Rank::Encoded {
                rank: bucket.encode(&ranking)?,
                keys: Keys::InPrefix(width),
            },
            None => {
                // The two encodings on a core each.
                let [key, rank]: [arrow::row::Rows; 2] =
                    on_every_core(vec![&keys, &ranking], |columns| bucket.encode(columns))?
                        .try_into()
                        .expect("two encodings");
                Rank::Encoded {
                    rank,
                    keys: Keys::Encoded(key),
                }
            }
        })
    }

    /// An integer that orders as row `index`'s key does, as far as its first 16 bytes go:
    /// what [`split_by_range`] cuts by.
    fn key_prefix(&self, index: usize) -> u128 {
        match self {
            Rank::Bits { key, .. } => key[index].into(),
            Rank::Encoded {
                rank,
                keys: Keys::InPrefix(width),
            } => key_in_prefix(prefix(rank, index), *width),
            Rank::Encoded {
                keys: Keys::Encoded(key),
                ..
            } => prefix(key, index),
        }
    }
}

/// Whether [`put_ordered_bits`] takes columns of this type: integer-like ones.
fn has_ordered_bits(data_type: &arrow::datatypes::DataType) -> bool {
    use arrow::datatypes::DataType::*;
    matches!(
        data_type,
        Int64
            | Date64
            | Timestamp(..)
            | Time64(_)
            | Duration(_)
            | Int32
            | Date32
            | Time32(_)
            | Int16
            | Int8
            | UInt64
            | UInt32
            | UInt16
            | UInt8
    )
}

/// Puts into `bits` each row's value of `column` (of a type [`has_ordered_bits`] takes), as
/// 64 bits that order as the values do: signed values with their sign bit flipped.
fn put_ordered_bits(bits: &mut [u64], column: &dyn arrow::array::Array) {
    use arrow::datatypes::DataType::*;
    fn put<T: arrow::datatypes::ArrowNativeType>(
        bits: &mut [u64],
        data: &arrow::array::ArrayData,
        ordered: impl Fn(T) -> u64,
    ) {
        for (bits, &value) in bits.iter_mut().zip(data.buffer::<T>(0)) {
            *bits = ordered(value);
        }
    }
    let signed = |value: i64| (value as u64) ^ (1 << 63);
    let data = column.to_data();
    match column.data_type() {
        Int64 | Date64 | Timestamp(..) | Time64(_) | Duration(_) => put(bits, &data, signed),
        Int32 | Date32 | Time32(_) => put(bits, &data, |v: i32| signed(v.into())),
        Int16 => put(bits, &data, |v: i16| signed(v.into())),
        Int8 => put(bits, &data, |v: i8| signed(v.into())),
        UInt64 => put(bits, &data, |v: u64| v),
        UInt32 => put(bits, &data, |v: u32| v.into()),
        UInt16 => put(bits, &data, |v: u16| v.into()),
        UInt8 => put(bits, &data, |v: u8| v.into()),
        other => unreachable!("{other} has no ordered bits: has_ordered_bits decides"),
    }
}

/// How an encoded rank's keys are told apart.
enum Keys {
    /// Every key takes this many bytes, the first of the rank's 16-byte prefix: keys are
    /// compared there, without an encoding of their own.
    InPrefix(usize),
    /// The keys' own encodings.
    Encoded(arrow::row::Rows),
}

/// The length of the key columns' encoding when it is the same for every row and fits a
/// 16-byte prefix: fixed-width columns (integers, dates, timestamps, ...) take a byte (for
/// null) and their width each in Arrow's row format. A key of one 64-bit integer takes 9.
fn key_width(schema: &SchemaRef, key: &[String]) -> Option<usize> {
    let width = key.iter().try_fold(0, |width, column| {
        let field = schema.field_with_name(column).ok()?;
        Some(width + 1 + field.data_type().primitive_width()?)
    })?;
    (width <= 16).then_some(width)
}

/// The key's `width` bytes of a rank's prefix, as an integer that orders as the keys do.
fn key_in_prefix(prefix: u128, width: usize) -> u128 {
    prefix >> (8 * (16 - width))
}

/// The winning row of each key among `rows`, in key order. Rows are ranked by key and
/// `order_by` only (`rank`); the whole rows are compared just for the rare rows that tie on both.
fn latest_per_key(bucket: &Bucket, rank: &Rank, rows: Vec<u32>) -> Result<Vec<u32>> {
    let mut firsts = match rank {
        Rank::Bits { key, order_by } => firsts_by_bits(key, order_by.as_deref(), rows),
        Rank::Encoded { rank, keys } => firsts_by_encoding(rank, keys, rows),
    };
    firsts.settle_ties(bucket)?;
    Ok(firsts.rows)
}

/// Each key's first row by rank, in key order, with the rows that tie with it on key and
/// `order_by`, for their whole rows to decide.
struct Firsts {
    rows: Vec<u32>,
    /// The tied rows, tie after tie.
    tied: Vec<u32>,
    /// Each tie: its key's index in `rows` and how many of `tied` are its rows.
    ties: Vec<(usize, usize)>,
}

impl Firsts {
    fn with_capacity(keys: usize) -> Self {
        Self {
            rows: Vec::with_capacity(keys),
            tied: Vec::new(),
            ties: Vec::new(),
        }
    }

    /// The next key's rows that rank first: one, or several that tie.
    fn push(&mut self, first: &[u32]) {
        self.rows.push(first[0]);
        if first.len() > 1 {
            self.ties.push((self.rows.len() - 1, first.len()));
            self.tied.extend_from_slice(first);
        }
    }

    /// Each tie settled by whole rows: the largest wins.
    fn settle_ties(&mut self, bucket: &Bucket) -> Result<()> {
        if self.ties.is_empty() {
            return Ok(());
        }
        let tied_rows = bucket.take(&self.tied)?;
        let whole: Vec<(ArrayRef, SortOptions)> = tied_rows
            .columns()
            .iter()
            .map(|c| (c.clone(), LATEST_FIRST))
            .collect();
        let whole = encode_rows(&whole)?;
        let mut offset = 0;
        for &(key, count) in &self.ties {
            let best = (offset..offset + count)
                .min_by(|&a, &b| whole.row(a).cmp(&whole.row(b)))
                .expect("a tie has rows");
            self.rows[key] = self.tied[best];
            offset += count;
        }
        Ok(())
    }
}

/// [`Firsts`] of `rows` ranked by bits: sorted by key alone, then each key's rows (5% of rows
/// have a duplicate in the bench's day) by `order_by`, the latest first.
fn firsts_by_bits(key: &[u64], order_by: Option<&[u64]>, rows: Vec<u32>) -> Firsts {
    let mut sorted: Vec<(u64, u32)> = rows
        .into_iter()
        .map(|row| (key[row as usize], row))
        .collect();
    sorted.sort_unstable_by_key(|&(key, _)| key);
    let latest = |row: u32| order_by.map_or(0, |bits| bits[row as usize]);
    let mut firsts = Firsts::with_capacity(sorted.len());
    let mut first = Vec::new();
    for run in sorted.chunk_by_mut(|a, b| a.0 == b.0) {
        if let [(_, only)] = run {
            firsts.push(&[*only]);
            continue;
        }
        run.sort_unstable_by_key(|&(_, row)| std::cmp::Reverse(latest(row)));
        let top = latest(run[0].1);
        first.clear();
        first.extend(
            run.iter()
                .map(|&(_, row)| row)
                .take_while(|&row| latest(row) == top),
        );
        firsts.push(&first);
    }
    firsts
}

/// [`Firsts`] of `rows` ranked by their encodings. Each row with its rank's prefix and a hash
/// of its key (unless the prefix holds the key), sorted by rank: comparing those first tells
/// almost every two rows apart without reading their encodings (a cache miss each, in this
/// order: the largest cost of this scan in the profile). A hash, not the key's prefix, keeps
/// an entry at 32 bytes.
fn firsts_by_encoding(rank: &arrow::row::Rows, keys: &Keys, rows: Vec<u32>) -> Firsts {
    let key_hash = |row: u32| match keys {
        Keys::InPrefix(_) => 0,
        Keys::Encoded(key) => hash(key.row(row as usize).as_ref()),
    };
    let mut sorted: Vec<(u128, u64, u32)> = rows
        .into_iter()
        .map(|row| (prefix(rank, row as usize), key_hash(row), row))
        .collect();
    sorted.sort_unstable_by(|a, b| by_encoding(rank, (a.0, a.2), (b.0, b.2)));
    let same_rank = |a: &(u128, u64, u32), b: &(u128, u64, u32)| {
        a.0 == b.0 && rank.row(a.2 as usize) == rank.row(b.2 as usize)
    };
    let same_key = |a: &(u128, u64, u32), b: &(u128, u64, u32)| match keys {
        Keys::InPrefix(width) => key_in_prefix(a.0, *width) == key_in_prefix(b.0, *width),
        Keys::Encoded(key) => a.1 == b.1 && key.row(a.2 as usize) == key.row(b.2 as usize),
    };
    let mut firsts = Firsts::with_capacity(sorted.len());
    let mut first = Vec::new();
    let mut start = 0;
    while start < sorted.len() {
        let mut end = start + 1;
        while end < sorted.len() && same_rank(&sorted[end], &sorted[start]) {
            end += 1;
        }
        first.clear();
        first.extend(sorted[start..end].iter().map(|&(_, _, row)| row));
        firsts.push(&first);
        while end < sorted.len() && same_key(&sorted[end], &sorted[start]) {
            end += 1;
        }
        start = end;
    }
    firsts
}

/// The first 16 bytes of row `index`'s encoding as one big-endian integer, zero-padded, so
/// that integers order as the encodings do wherever they differ in those bytes.
fn prefix(rows: &arrow::row::Rows, index: usize) -> u128 {
    let bytes = rows.row(index);
    let bytes = bytes.as_ref();
    let mut head = [0u8; 16];
    let length = bytes.len().min(16);
    head[..length].copy_from_slice(&bytes[..length]);
    u128::from_be_bytes(head)
}

/// `rows` sorted by their encodings. The prefixes decide almost every comparison without a
/// call to `memcmp` (which was the largest single cost of deduplication in the profile);
/// equal prefixes fall back to the whole encoding.
fn sort_by_encoding(encodings: &arrow::row::Rows, rows: Vec<u32>) -> Vec<u32> {
    let mut keyed: Vec<(u128, u32)> = rows
        .into_iter()
        .map(|row| (prefix(encodings, row as usize), row))
        .collect();
    keyed.sort_unstable_by(|&a, &b| by_encoding(encodings, a, b));
    keyed.into_iter().map(|(_, row)| row).collect()
}

/// The order of two rows given as (prefix, row): by prefix, then by whole encoding.
fn by_encoding(encodings: &arrow::row::Rows, a: (u128, u32), b: (u128, u32)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| {
        encodings
            .row(a.1 as usize)
            .cmp(&encodings.row(b.1 as usize))
    })
}

/// Splits each part's rows (ordered by partition) by day: for each day, its rows of each part
/// in part order, so that taken in turn they are the day's rows in order.
pub(crate) fn split_by_day(
    parts: &[RecordBatch],
    partition_column: &str,
) -> Vec<(NaiveDate, Vec<RecordBatch>)> {
    let mut days: std::collections::BTreeMap<NaiveDate, Vec<RecordBatch>> = Default::default();
    for batch in parts {
        let dates = batch
            .column_by_name(partition_column)
            .expect("conformed column")
            .as_primitive::<Date32Type>()
            .values()
            .clone();
        let mut start = 0;
        for end in 1..=dates.len() {
            if end == dates.len() || dates[end] != dates[start] {
                days.entry(date_from_days(dates[start]))
                    .or_default()
                    .push(batch.slice(start, end - start));
                start = end;
            }
        }
    }
    days.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(ids: &[i64], versions: &[i64], notes: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
            Field::new("note", DataType::Utf8, true),
            Field::new("date", DataType::Date32, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(Int64Array::from(versions.to_vec())),
                Arc::new(StringArray::from(notes.to_vec())),
                Arc::new(Date32Array::from(vec![19723; ids.len()])),
            ],
        )
        .unwrap()
    }

    fn rules() -> RowRules {
        RowRules {
            key: vec!["id".into()],
            order_by: Some("v".into()),
            ..RowRules::default()
        }
    }

    /// The parts of `dedup_and_order_in`, one after the other.
    fn dedup(batch: RecordBatch, rules: &RowRules, parts: usize) -> RecordBatch {
        let schema = batch.schema();
        let parts = dedup_and_order_in(&Bucket::new(&schema, vec![batch]), rules, parts).unwrap();
        arrow::compute::concat_batches(&schema, &parts).unwrap()
    }

    fn dedup_and_order(batch: RecordBatch, rules: &RowRules) -> Result<RecordBatch> {
        Ok(dedup(batch, rules, 1))
    }

    #[test]
    fn latest_wins_and_ties_break_by_row_not_by_position() {
        let a = dedup_and_order(
            batch(&[1, 1, 1, 2], &[1, 5, 5, 1], &["old", "x", "y", "z"]),
            &rules(),
        )
        .unwrap();
        let b = dedup_and_order(
            batch(&[2, 1, 1, 1], &[1, 5, 5, 1], &["z", "y", "x", "old"]),
            &rules(),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.num_rows(), 2);
        let notes = a.column(2).as_string::<i32>();
        assert_eq!(
            notes.value(0),
            "y",
            "of the two latest rows, the larger whole row wins"
        );
    }

    #[test]
    fn dedup_matches_a_naive_reference_in_any_input_order() {
        // Small domains so that keys repeat and many rows tie on key and version.
        let mut next = crate::test_numbers(0x2545_f491_u64);
        let notes = ["a", "b", "c"];
        for _ in 0..50 {
            let rows: Vec<(i64, i64, &str)> = (0..40)
                .map(|_| (next(8) as i64, next(3) as i64, notes[next(3)]))
                .collect();
            let mut expected = std::collections::BTreeMap::new();
            for &(id, v, note) in &rows {
                let best = expected.entry(id).or_insert((v, note));
                *best = (*best).max((v, note));
            }
            let expected: Vec<(i64, i64, &str)> = expected
                .into_iter()
                .map(|(id, (v, n))| (id, v, n))
                .collect();
            for reversed in [false, true] {
                let mut input = rows.clone();
                if reversed {
                    input.reverse();
                }
                let ids: Vec<i64> = input.iter().map(|r| r.0).collect();
                let versions: Vec<i64> = input.iter().map(|r| r.1).collect();
                let texts: Vec<&str> = input.iter().map(|r| r.2).collect();
                let out = dedup_and_order(batch(&ids, &versions, &texts), &rules()).unwrap();
                let got: Vec<(i64, i64, &str)> = (0..out.num_rows())
                    .map(|i| {
                        (
                            out.column(0)
                                .as_primitive::<arrow::datatypes::Int64Type>()
                                .value(i),
                            out.column(1)
                                .as_primitive::<arrow::datatypes::Int64Type>()
                                .value(i),
                            out.column(2).as_string::<i32>().value(i),
                        )
                    })
                    .collect();
                assert_eq!(got, expected);
            }
        }
    }

    /// Cut into parts by key range, the rows and their order stay those of one part, with or
    /// without a key, whatever the order of the input, and a day's rows of each part taken
    /// in turn are the day's rows in order.
    #[test]
    fn parts_give_the_rows_one_part_gives() {
        let mut next = crate::test_numbers(0x9E37_79B9_u64);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
            Field::new("date", DataType::Date32, true),
        ]));
        for _ in 0..20 {
            let rows = 200 + next(300);
            let ids: Vec<i64> = (0..rows).map(|_| next(150) as i64).collect();
            let versions: Vec<i64> = (0..rows).map(|_| next(4) as i64).collect();
            let dates: Vec<i32> = (0..rows).map(|_| 19723 + next(3) as i32).collect();
            fn order<T>(mut values: Vec<T>, reversed: bool) -> Vec<T> {
                if reversed {
                    values.reverse();
                }
                values
            }
            let batch = |reversed: bool| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(order(ids.clone(), reversed))),
                        Arc::new(Int64Array::from(order(versions.clone(), reversed))),
                        Arc::new(Date32Array::from(order(dates.clone(), reversed))),
                    ],
                )
                .unwrap()
            };
            // A key inside the rank's prefix, one of its own (18 bytes), and none.
            let wide = RowRules {
                key: vec!["id".into(), "v".into()],
                ..RowRules::default()
            };
            for rules in [rules(), wide, RowRules::default()] {
                let whole = dedup(batch(false), &rules, 1);
                for parts in [2, 3, 7] {
                    for reversed in [false, true] {
                        // In batches of 64 rows, as the store holds rows in batches.
                        let whole_batch = batch(reversed);
                        let batches = (0..whole_batch.num_rows())
                            .step_by(64)
                            .map(|start| {
                                whole_batch.slice(start, 64.min(whole_batch.num_rows() - start))
                            })
                            .collect();
                        let bucket = Bucket::new(&schema, batches);
                        let cut = dedup_and_order_in(&bucket, &rules, parts).unwrap();
                        assert!(cut.len() > 1, "{parts} parts asked, {} made", cut.len());
                        let days: Vec<RecordBatch> = split_by_day(&cut, "date")
                            .into_iter()
                            .flat_map(|(_, slices)| slices)
                            .collect();
                        let joined = arrow::compute::concat_batches(&schema, &days).unwrap();
                        assert_eq!(joined, whole, "{parts} parts, reversed: {reversed}");
                    }
                }
            }
        }
    }

    /// `key_width` is the length Arrow's row format gives the key columns, where it is fixed
    /// and at most 16 bytes (what comparing keys inside the rank's prefix relies on).
    #[test]
    fn key_width_is_the_length_of_the_keys_encoding() {
        use arrow::array::{Decimal128Array, Float64Array, Int8Array, TimestampMicrosecondArray};
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("i8", Arc::new(Int8Array::from(vec![-3]))),
            ("i64", Arc::new(Int64Array::from(vec![-3]))),
            ("f64", Arc::new(Float64Array::from(vec![1.5]))),
            ("day", Arc::new(Date32Array::from(vec![19723]))),
            (
                "at",
                Arc::new(TimestampMicrosecondArray::from(vec![7]).with_timezone("UTC")),
            ),
            (
                "amount",
                Arc::new(
                    Decimal128Array::from(vec![7])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
            ("text", Arc::new(StringArray::from(vec!["abc"]))),
        ];
        let batch = RecordBatch::try_from_iter(columns.clone()).unwrap();
        let keys: [&[&str]; 7] = [
            &["i8"],
            &["i64"],
            &["i64", "day"],
            &["f64", "at"],
            &["i64", "i64"],
            &["amount"],
            &["text"],
        ];
        for key in keys {
            let names: Vec<String> = key.iter().map(|k| k.to_string()).collect();
            let encoded = encode_rows(
                &key.iter()
                    .map(|k| {
                        (
                            batch.column_by_name(k).unwrap().clone(),
                            SortOptions::default(),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            let length = encoded.row(0).as_ref().len();
            let fixed = !key.contains(&"text");
            let expected = (fixed && length <= 16).then_some(length);
            assert_eq!(key_width(&batch.schema(), &names), expected, "{key:?}");
        }
    }

    /// Keys compared inside the rank's prefix, and ranks taken as bits, pick the same winning
    /// rows, in the same order, as keys and ranks compared by their own encodings, for keys and
    /// `order_by` columns of every integer-like width and sign, and no `order_by`.
    #[test]
    fn keys_in_the_prefix_and_ranks_as_bits_pick_the_winners_their_encodings_pick() {
        use arrow::array::{
            Int8Array, Int32Array, TimestampMicrosecondArray, UInt8Array, UInt64Array,
        };
        let mut next = crate::test_numbers(0x1234_5678_u64);
        let rows = 3_000;
        let draw = |next: &mut dyn FnMut(usize) -> usize, kind: usize| -> ArrayRef {
            // Small domains, negative values and values far apart, so that keys repeat,
            // versions tie and the sign bit matters.
            let values: Vec<i64> = (0..rows)
                .map(|_| {
                    let small = next(40) as i64 - 20;
                    [small, small * 1_000_000_007][next(2)]
                })
                .collect();
            match kind {
                0 => Arc::new(Int64Array::from(values)),
                1 => Arc::new(Int32Array::from_iter_values(
                    values.iter().map(|&v| v as i32),
                )),
                2 => Arc::new(Int8Array::from_iter_values(values.iter().map(|&v| v as i8))),
                3 => Arc::new(UInt8Array::from_iter_values(
                    values.iter().map(|&v| v as u8),
                )),
                4 => Arc::new(UInt64Array::from_iter_values(
                    values.iter().map(|&v| v as u64),
                )),
                _ => Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC")),
            }
        };
        for key_kind in 0..6 {
            for order_kind in [None, Some(0), Some(1), Some(5)] {
                let notes: ArrayRef = Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|_| ["a", "b"][next(2)]),
                ));
                let mut columns = vec![("id", draw(&mut next, key_kind)), ("note", notes)];
                if let Some(kind) = order_kind {
                    columns.push(("v", draw(&mut next, kind)));
                }
                let batch = RecordBatch::try_from_iter(columns).unwrap();
                let schema = batch.schema();
                // In batches of 700 rows, taken as bits in three runs of batches.
                let batches = (0..rows)
                    .step_by(700)
                    .map(|start| batch.slice(start, 700.min(rows - start)));
                let bucket = Bucket::new(&schema, batches.collect());
                let ascending = SortOptions::default();
                let mut ranking = vec![("id", ascending)];
                ranking.extend(order_kind.map(|_| ("v", LATEST_FIRST)));
                let encoded = |keys: Keys| Rank::Encoded {
                    rank: bucket.encode(&ranking).unwrap(),
                    keys,
                };
                let key = bucket.encode(&[("id", ascending)]).unwrap();
                let width = key_width(&schema, &["id".to_string()]).unwrap();
                let as_bits = Rank::Bits {
                    key: bucket.bits("id", 3).unwrap(),
                    order_by: order_kind.map(|_| bucket.bits("v", 3).unwrap()),
                };
                let all: Vec<u32> = (0..rows as u32).collect();
                // Compared as rows, not indices: rows equal in every column are one winner.
                let winners = |rank: &Rank| {
                    let rows = latest_per_key(&bucket, rank, all.clone()).unwrap();
                    bucket.take(&rows).unwrap()
                };
                let expected = winners(&encoded(Keys::Encoded(key)));
                let case = format!("key {key_kind}, order_by {order_kind:?}");
                assert_eq!(winners(&encoded(Keys::InPrefix(width))), expected, "{case}");
                assert_eq!(winners(&as_bits), expected, "{case}");
            }
        }
    }

    /// Only one key column and at most one `order_by`, of integer-like types without nulls,
    /// are taken as bits.
    #[test]
    fn ranks_are_bits_only_for_integer_like_columns_without_nulls() {
        use arrow::array::Float64Array;
        let with = |id: ArrayRef| {
            let batch = RecordBatch::try_from_iter([
                ("id", id),
                ("v", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            ])
            .unwrap();
            Bucket::new(&batch.schema(), vec![batch])
        };
        let as_bits = |bucket: &Bucket, key: &[&str]| {
            let rules = RowRules {
                key: key.iter().map(|k| k.to_string()).collect(),
                order_by: Some("v".into()),
                ..RowRules::default()
            };
            matches!(Rank::of(bucket, &rules, 2).unwrap(), Rank::Bits { .. })
        };
        assert!(as_bits(
            &with(Arc::new(Int64Array::from(vec![7, 8]))),
            &["id"]
        ));
        assert!(!as_bits(
            &with(Arc::new(Int64Array::from(vec![Some(7), None]))),
            &["id"]
        ));
        assert!(!as_bits(
            &with(Arc::new(Float64Array::from(vec![7.0, 8.0]))),
            &["id"]
        ));
        assert!(!as_bits(
            &with(Arc::new(StringArray::from(vec!["7", "8"]))),
            &["id"]
        ));
        assert!(!as_bits(
            &with(Arc::new(Int64Array::from(vec![7, 8]))),
            &["id", "v"]
        ));
    }

    #[test]
    fn cuts_split_buckets_evenly_by_key_whatever_the_row_order() {
        let mut next = crate::test_numbers(0x5EED_u64);
        // Keys repeat, and one key holds a twentieth of the rows.
        let ids: Vec<i64> = (0..400_000)
            .map(|i| match i % 20 {
                0 => 7,
                _ => next(150_000) as i64 - 75_000,
            })
            .collect();
        let mut shuffled = ids.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, next(i + 1));
        }
        let ascending = SortOptions::default();
        let keys_by_part = |ids: &[i64], parts: usize| -> Vec<Vec<i64>> {
            let column: ArrayRef = Arc::new(Int64Array::from(ids.to_vec()));
            let rows = encode_rows(&[(column, ascending)]).unwrap();
            split_by_range(rows.num_rows(), parts, |row| prefix(&rows, row))
                .unwrap()
                .into_iter()
                .map(|part| {
                    let mut keys: Vec<i64> = part.iter().map(|&row| ids[row as usize]).collect();
                    keys.sort();
                    keys
                })
                .collect()
        };
        for parts in [2, 3, 4] {
            let split = keys_by_part(&ids, parts);
            assert_eq!(split.len(), parts);
            let even = ids.len() / parts;
            for (part, keys) in split.iter().enumerate() {
                // A cut can fall only beside the large key's 20,000 rows, never among them.
                let off = keys.len().abs_diff(even);
                assert!(
                    off <= 20_000,
                    "part {part} of {parts}: {} rows, {even} even",
                    keys.len()
                );
            }
            for pair in split.windows(2) {
                assert!(pair[0].last() < pair[1].first(), "parts overlap in keys");
            }
            assert_eq!(split.iter().map(Vec::len).sum::<usize>(), ids.len());
            assert_eq!(
                keys_by_part(&shuffled, parts),
                split,
                "the cuts follow the order"
            );
        }
    }
}
