//! Any bytes, decoded as CSV (with inferred types or a table's), JSON lines or Parquet, or as
//! the frames of a gzip, zstd or bzip2 file holding CSV (the first byte picks which; for a
//! codec the bytes follow its magic number, so that they reach its decoder), must end in a
//! decoded batch or a typed error other than an internal one: never a panic, a hang or a
//! crash.
#![no_main]

use lakewriter::{Error, InputFormat, decode_for_fuzzing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&selector, bytes)) = data.split_first() {
        let (format, typed, magic): (_, _, &[u8]) = match selector % 7 {
            0 => (InputFormat::Csv, false, b""),
            1 => (InputFormat::Csv, true, b""),
            2 => (InputFormat::Json, false, b""),
            3 => (InputFormat::Parquet, false, b""),
            4 => (InputFormat::Csv, false, &[0x1f, 0x8b]),
            5 => (InputFormat::Csv, true, &[0x28, 0xb5, 0x2f, 0xfd]),
            _ => (InputFormat::Csv, false, b"BZh91AY&SY"),
        };
        let bytes = [magic, bytes].concat();
        if let Err(e @ Error::Internal { .. }) = decode_for_fuzzing(format, &bytes, typed) {
            panic!("an internal error is no answer to input: {e}");
        }
    }
});
