//! Rows: Arrow's row format, the one encoding lakewriter compares and hashes rows by, for
//! sorting and deduplicating (`transform`) and for spreading rows over spill buckets (`spill`).

use arrow::array::ArrayRef;
use arrow::compute::SortOptions;
use arrow::row::{RowConverter, SortField};

use crate::error::{Error, Result};

/// The columns' rows in Arrow's row format: rows compare bytewise in the order the columns
/// and their sort options define, and equal rows encode to equal bytes.
pub(crate) fn encode_rows(columns: &[(ArrayRef, SortOptions)]) -> Result<arrow::row::Rows> {
    let fields = columns
        .iter()
        .map(|(c, options)| SortField::new_with_options(c.data_type().clone(), *options))
        .collect();
    let converter = RowConverter::new(fields).map_err(|e| Error::internal("sorting rows", e))?;
    let arrays: Vec<ArrayRef> = columns.iter().map(|(c, _)| c.clone()).collect();
    converter
        .convert_columns(&arrays)
        .map_err(|e| Error::internal("sorting rows", e))
}
