//! The IDX file format of the MNIST distribution: big-endian header (magic, dimensions) followed
//! by unsigned bytes. Accepts gzip-compressed or raw files and validates magic, dimensions and
//! lengths, naming the file in every error.

use std::io::Read;
use std::path::Path;

use crate::error::DataError;

/// What an IDX file is expected to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxKind {
    /// magic 2051, dims [n, 28, 28]
    Images,
    /// magic 2049, dims [n]
    Labels,
}

impl IdxKind {
    fn magic(self) -> u32 {
        match self {
            IdxKind::Images => 2051,
            IdxKind::Labels => 2049,
        }
    }
    fn ndims(self) -> usize {
        match self {
            IdxKind::Images => 3,
            IdxKind::Labels => 1,
        }
    }
}

/// Decompresses `bytes` if they start with the gzip magic, else returns them unchanged.
pub fn maybe_gunzip(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 5);
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::Format {
                path: path.to_owned(),
                why: format!("broken gzip stream: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// Parses a decompressed IDX file of the given kind with `expected_count` items; returns the
/// payload (images: n*28*28 bytes row-major; labels: n bytes, each checked to be 0..=9).
pub fn parse(
    path: &Path,
    bytes: &[u8],
    kind: IdxKind,
    expected_count: usize,
) -> Result<Vec<u8>, DataError> {
    let err = |why: String| DataError::Format {
        path: path.to_owned(),
        why,
    };
    let header_len = 4 + 4 * kind.ndims();
    if bytes.len() < header_len {
        return Err(err(format!(
            "file is {} bytes, shorter than the {header_len}-byte header",
            bytes.len()
        )));
    }
    let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    let magic = word(0);
    if magic != kind.magic() {
        let other = match kind {
            IdxKind::Images => " (2049 is a label file: are the file names swapped?)",
            IdxKind::Labels => " (2051 is an image file: are the file names swapped?)",
        };
        return Err(err(format!(
            "magic number is {magic}, expected {}{}",
            kind.magic(),
            if magic == 2049 || magic == 2051 {
                other
            } else {
                ""
            }
        )));
    }
    let dims: Vec<usize> = (1..=kind.ndims()).map(|i| word(i) as usize).collect();
    if dims[0] != expected_count {
        return Err(err(format!(
            "holds {} items, expected {expected_count}",
            dims[0]
        )));
    }
    if kind == IdxKind::Images && (dims[1] != 28 || dims[2] != 28) {
        return Err(err(format!(
            "images are {}x{}, expected 28x28",
            dims[1], dims[2]
        )));
    }
    let payload_len: usize = dims.iter().product();
    let payload = &bytes[header_len..];
    if payload.len() != payload_len {
        return Err(err(format!(
            "payload is {} bytes, the header promises {payload_len} (truncated or padded file)",
            payload.len()
        )));
    }
    if kind == IdxKind::Labels {
        if let Some((i, &l)) = payload.iter().enumerate().find(|(_, &l)| l > 9) {
            return Err(err(format!("label {i} is {l}, labels must be 0..=9")));
        }
    }
    Ok(payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    fn p() -> &'static Path {
        Path::new("x.idx")
    }

    #[test]
    fn parses_valid_labels_and_images() {
        let l = idx(2049, &[3], &[1, 2, 9]);
        assert_eq!(parse(p(), &l, IdxKind::Labels, 3).unwrap(), vec![1, 2, 9]);
        let img = idx(2051, &[2, 28, 28], &[7u8; 2 * 784]);
        assert_eq!(parse(p(), &img, IdxKind::Images, 2).unwrap().len(), 1568);
    }

    #[test]
    fn rejects_bad_files_with_specific_reasons() {
        let cases: Vec<(Vec<u8>, IdxKind, usize, &str)> = vec![
            (
                vec![0, 0],
                IdxKind::Labels,
                1,
                "shorter than the 8-byte header",
            ),
            (
                idx(2051, &[1, 28, 28], &[0; 784]),
                IdxKind::Labels,
                1,
                "swapped",
            ),
            (
                idx(1234, &[1], &[0]),
                IdxKind::Labels,
                1,
                "magic number is 1234",
            ),
            (
                idx(2049, &[2], &[0, 1]),
                IdxKind::Labels,
                3,
                "holds 2 items, expected 3",
            ),
            (idx(2049, &[2], &[0]), IdxKind::Labels, 2, "truncated"),
            (
                idx(2049, &[2], &[0, 10]),
                IdxKind::Labels,
                2,
                "label 1 is 10",
            ),
            (
                idx(2051, &[1, 27, 28], &[0; 756]),
                IdxKind::Images,
                1,
                "27x28",
            ),
        ];
        for (bytes, kind, n, want) in cases {
            let e = parse(p(), &bytes, kind, n).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
            assert!(e.starts_with("x.idx:"), "{e:?} should name the file");
        }
    }

    #[test]
    fn gunzip_is_transparent_and_reports_broken_streams() {
        use std::io::Write;
        let raw = idx(2049, &[1], &[4]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&raw).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(maybe_gunzip(p(), gz.clone()).unwrap(), raw);
        assert_eq!(maybe_gunzip(p(), raw.clone()).unwrap(), raw);
        let broken = gz[..gz.len() / 2].to_vec();
        assert!(maybe_gunzip(p(), broken)
            .unwrap_err()
            .to_string()
            .contains("broken gzip"));
    }
}
