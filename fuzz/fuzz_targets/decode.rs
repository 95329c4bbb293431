//! Any bytes, decoded as CSV (with inferred types or a table's), JSON lines or Parquet (the
//! first byte picks which), must end in a decoded batch or a typed error other than an internal
//! one: never a panic, a hang or a crash.
#![no_main]

use lakewriter::{Error, InputFormat, decode_for_fuzzing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&selector, bytes)) = data.split_first() {
        let (format, typed) = match selector % 4 {
            0 => (InputFormat::Csv, false),
            1 => (InputFormat::Csv, true),
            2 => (InputFormat::Json, false),
            _ => (InputFormat::Parquet, false),
        };
        if let Err(e @ Error::Internal { .. }) = decode_for_fuzzing(format, bytes, typed) {
            panic!("an internal error is no answer to input: {e}");
        }
    }
});
