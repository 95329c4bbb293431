//! Any bytes, decoded as CSV, JSON lines or Parquet (the first byte picks which), must end in a
//! decoded batch or a typed error: never a panic, a hang or a crash.
#![no_main]

use lakewriter::{InputFormat, decode_for_fuzzing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&selector, bytes)) = data.split_first() {
        let format = match selector % 3 {
            0 => InputFormat::Csv,
            1 => InputFormat::Json,
            _ => InputFormat::Parquet,
        };
        let _ = decode_for_fuzzing(format, bytes);
    }
});
