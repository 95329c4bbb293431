//! Rows: Arrow's row format, the one encoding lakewriter compares and hashes rows by, for
//! sorting and deduplicating (`transform`) and for spreading rows over spill buckets (`spill`).

use arrow::array::ArrayRef;
use arrow::compute::SortOptions;
use arrow::row::{RowConverter, SortField};

use crate::error::{Error, Result};

/// The columns' rows in Arrow's row format: rows compare bytewise in the order the columns
/// and their sort options define, and equal rows encode to equal bytes.
pub(crate) fn encode_rows(columns: &[(ArrayRef, SortOptions)]) -> Result<arrow::row::Rows> {
    let whole: Vec<(Vec<ArrayRef>, SortOptions)> = columns
        .iter()
        .map(|(column, options)| (vec![column.clone()], *options))
        .collect();
    encode_rows_of(&whole)
}

/// The rows of columns given in pieces (each column's pieces in turn: the batches of a
/// bucket), in Arrow's row format, piece after piece, without combining the pieces first.
pub(crate) fn encode_rows_of(columns: &[(Vec<ArrayRef>, SortOptions)]) -> Result<arrow::row::Rows> {
    let error = |e| Error::internal("sorting rows", e);
    let fields = columns
        .iter()
        .map(|(pieces, options)| {
            let data_type = pieces
                .first()
                .map_or(arrow::datatypes::DataType::Null, |p| p.data_type().clone());
            SortField::new_with_options(data_type, *options)
        })
        .collect();
    let converter = RowConverter::new(fields).map_err(error)?;
    let pieces = columns.first().map_or(0, |(pieces, _)| pieces.len());
    let rows: usize = columns
        .first()
        .map_or(0, |(pieces, _)| pieces.iter().map(|p| p.len()).sum());
    let mut encoded = converter.empty_rows(rows, 0);
    for piece in 0..pieces {
        let arrays: Vec<ArrayRef> = columns.iter().map(|(p, _)| p[piece].clone()).collect();
        converter.append(&mut encoded, &arrays).map_err(error)?;
        if piece == 0 {
            reserve_like_first_piece(&mut encoded, rows);
        }
    }
    Ok(encoded)
}

/// Reserves room for `rows` rows in all, sized by the bytes per row encoded so far (with a
/// quarter more for longer values later). Grown by doubling instead, the buffer of a large
/// bucket was copied a dozen times into fresh pages, and faulting those in took about 7% of a
/// 10-million-row run. Room never written is never faulted in, so over-reserving is cheap.
fn reserve_like_first_piece(encoded: &mut arrow::row::Rows, rows: usize) {
    let done = encoded.num_rows();
    if done == 0 || rows <= done {
        return;
    }
    let bytes: usize = encoded.lengths().sum();
    let per_row = bytes.div_ceil(done);
    encoded.reserve(0, (rows - done).saturating_mul(per_row) / 4 * 5);
}

/// A quick, fixed 64-bit hash of a row's encoding: equal encodings hash alike on every run,
/// and different ones almost never do (deduplication then compares the encodings).
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    bytes.chunks(8).fold(bytes.len() as u64, |hash, chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        (hash ^ u64::from_le_bytes(word))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29)
    })
}
