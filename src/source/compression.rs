//! Compression around CSV and JSON-lines files: gzip, zstd and bzip2, decompressed as the
//! bytes stream in (from a local file or one S3 GET, never a temporary copy). The codec
//! comes from `--compression`, else from the name's last extension (`.csv.gz`), else from
//! the file's first bytes. The run's fingerprint stays over the bytes as stored.
//!
//! The decoders are the crates everyone uses (flate2 with zlib-rs, zstd, bzip2 with its Rust
//! port of libbzip2); each reads concatenated members or frames, as `cat a.gz b.gz`, Kinesis
//! Firehose and `pigz` write them.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::str::FromStr;

use crate::error::{Error, Result};

/// How input files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// From the name's extension (`.gz`, `.zst`, `.bz2`), else from the first bytes.
    #[default]
    Auto,
    /// Not compressed.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
    /// bzip2 (`.bz2`).
    Bzip2,
}

impl FromStr for Compression {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(Compression::Auto),
            "none" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            "bzip2" | "bz2" => Ok(Compression::Bzip2),
            _ => Err(Error::InvalidOption(format!(
                "unknown compression '{text}': use auto, none, gzip, zstd or bzip2"
            ))),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Auto => "auto",
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
        })
    }
}

impl Compression {
    /// The codec the last extension of `name` names, with the name without it
    /// (`a.csv.gz` gives gzip and `a.csv`).
    pub(super) fn from_name(name: &str) -> Option<(Self, &str)> {
        let (stem, extension) = name.rsplit_once('.')?;
        let codec = match extension.to_ascii_lowercase().as_str() {
            "gz" | "gzip" => Compression::Gzip,
            "zst" | "zstd" => Compression::Zstd,
            "bz2" => Compression::Bzip2,
            _ => return None,
        };
        Some((codec, stem))
    }

    /// The codec whose magic number `prefix` starts with, or `None` for plain bytes. No CSV
    /// or JSON text starts like these: gzip's 1F 8B and zstd's 28 B5 2F FD are not text,
    /// and bzip2's `BZh` is followed by a block size digit and the block's own magic.
    fn sniff(prefix: &[u8]) -> Self {
        match prefix {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [
                b'B',
                b'Z',
                b'h',
                b'1'..=b'9',
                0x31,
                0x41,
                0x59,
                0x26,
                0x53,
                0x59,
                ..,
            ] => Compression::Bzip2,
            _ => Compression::None,
        }
    }

    /// This codec, or for `Auto` the one the first bytes of `path` name.
    pub(super) fn of_local_file(self, path: &std::path::Path) -> io::Result<Self> {
        if self != Compression::Auto {
            return Ok(self);
        }
        let mut prefix = Vec::with_capacity(SNIFF_BYTES);
        std::fs::File::open(path)?
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut prefix)?;
        Ok(Self::sniff(&prefix))
    }
}

/// Enough first bytes to tell every codec apart.
const SNIFF_BYTES: usize = 10;

/// `raw` decompressed as `compression` says (`Auto`: as its first bytes say). Nothing is
/// read until the result is: the caller may be on an async thread, where a blocking read of
/// an S3 stream must not happen.
pub(super) fn decompress<'a>(
    raw: impl BufRead + Send + 'a,
    compression: Compression,
) -> Box<dyn BufRead + Send + 'a> {
    Box::new(Decompressing {
        pending: Some((Box::new(raw), compression)),
        open: None,
    })
}

type Reader<'a> = Box<dyn BufRead + Send + 'a>;

/// A reader that picks its decoder on its first read.
struct Decompressing<'a> {
    pending: Option<(Reader<'a>, Compression)>,
    open: Option<Reader<'a>>,
}

impl<'a> Decompressing<'a> {
    fn reader(&mut self) -> io::Result<&mut Reader<'a>> {
        if let Some((raw, compression)) = self.pending.take() {
            self.open = Some(open(raw, compression)?);
        }
        self.open
            .as_mut()
            .ok_or_else(|| io::Error::other("the decoder could not start"))
    }
}

impl Read for Decompressing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader()?.read(buf)
    }
}

impl BufRead for Decompressing<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.reader()?.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Some(open) = &mut self.open {
            open.consume(amount);
        }
    }
}

fn open<'a>(mut raw: Reader<'a>, compression: Compression) -> io::Result<Reader<'a>> {
    let codec = match compression {
        // `fill_buf` gives the first chunk; one shorter than the magic numbers is rare (a
        // network stream's first chunk) and only costs reading the bytes as plain.
        Compression::Auto => Compression::sniff(raw.fill_buf()?),
        other => other,
    };
    let decoder: Box<dyn Read + Send + 'a> = match codec {
        Compression::Auto | Compression::None => return Ok(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
    };
    Ok(Box::new(BufReader::with_capacity(
        DECOMPRESSED_BUFFER,
        Damaged {
            inner: decoder,
            codec,
            lines: 0,
        },
    )))
}

const DECOMPRESSED_BUFFER: usize = 1 << 20;

/// A decoder whose errors say which codec failed, after how many intact lines of text, and
/// what to do about it.
struct Damaged<R> {
    inner: R,
    codec: Compression,
    /// Line breaks decompressed so far.
    lines: usize,
}

impl<R: Read> Read for Damaged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(read) => {
                self.lines += buf[..read].iter().filter(|&&byte| byte == b'\n').count();
                Ok(read)
            }
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!(
                    "the file's {} data is damaged or cut short after line {} of its text \
                     ({e}); check the file, or pass --compression none if it is not compressed",
                    self.codec, self.lines
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// With a content checksum, as the `zstd` tool writes by default.
    fn zstd(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        encoder.include_checksum(true).unwrap();
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn bzip2(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all(bytes: &[u8], compression: Compression) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decompress(bytes, compression).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn every_codec_is_told_by_its_first_bytes_and_plain_text_is_left_alone() {
        let text = b"id,date\n1,2024-01-01\n".repeat(100);
        for (codec, compressed) in [
            (Compression::Gzip, gzip(&text)),
            (Compression::Zstd, zstd(&text)),
            (Compression::Bzip2, bzip2(&text)),
            (Compression::None, text.clone()),
        ] {
            assert_eq!(Compression::sniff(&compressed), codec);
            assert_eq!(read_all(&compressed, Compression::Auto).unwrap(), text);
            assert_eq!(read_all(&compressed, codec).unwrap(), text);
        }
        // Text that starts like bzip2's magic is still text.
        assert_eq!(Compression::sniff(b"BZh9,date\n"), Compression::None);
    }

    #[test]
    fn concatenated_members_and_frames_are_read_whole() {
        let (a, b) = (b"id\n1\n".as_slice(), b"2\n".as_slice());
        for compress in [gzip, zstd, bzip2] {
            let joined = [compress(a), compress(b)].concat();
            assert_eq!(read_all(&joined, Compression::Auto).unwrap(), b"id\n1\n2\n");
        }
    }

    #[test]
    fn damaged_and_cut_short_data_is_an_error_naming_the_codec() {
        let text = b"id,date\n1,2024-01-01\n".repeat(1000);
        for (name, compressed) in [
            ("gzip", gzip(&text)),
            ("zstd", zstd(&text)),
            ("bzip2", bzip2(&text)),
        ] {
            let cut = &compressed[..compressed.len() / 2];
            let error = read_all(cut, Compression::Auto).unwrap_err();
            assert!(error.to_string().contains(name), "{name}: {error}");
            let mut flipped = compressed.clone();
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0xff;
            assert!(read_all(&flipped, Compression::Auto).is_err(), "{name}");
        }
    }

    #[test]
    fn names_give_the_codec_and_the_inner_name() {
        assert_eq!(
            Compression::from_name("raw/a.csv.gz"),
            Some((Compression::Gzip, "raw/a.csv"))
        );
        assert_eq!(
            Compression::from_name("a.jsonl.ZST"),
            Some((Compression::Zstd, "a.jsonl"))
        );
        assert_eq!(Compression::from_name("a.csv"), None);
    }
}
