//! Request bodies under limits, for both transports: reading a body with a size cap and a
//! deadline, and decompressing gzip/zstd while counting output bytes, so a request is
//! refused after reading at most the limit (a decompression bomb never inflates past it,
//! reliability.md trap 3).

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Incoming};
use std::io::Read;
use std::time::Duration;

/// Largest zstd window accepted (log2 bytes): 32 MiB, so one decoder's memory is bounded
/// whatever the frame header asks for. Default encoders use at most 8 MiB below level 19.
const ZSTD_WINDOW_LOG_MAX: u32 = 25;

/// A request body's compression (`Content-Encoding` / `grpc-encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    /// Parses a header value; `None` (header absent) is identity. Unknown names are `Err`.
    pub fn parse(value: Option<&[u8]>) -> Result<Self, String> {
        let Some(v) = value else {
            return Ok(Self::Identity);
        };
        let v = String::from_utf8_lossy(v).trim().to_ascii_lowercase();
        match v.as_str() {
            "" | "identity" => Ok(Self::Identity),
            "gzip" | "x-gzip" => Ok(Self::Gzip),
            "zstd" => Ok(Self::Zstd),
            _ => Err(v),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit (compressed on the wire, or after decompression).
    #[error("request exceeds the limit of {limit} bytes{}", if *.decompressed { " after decompression" } else { "" })]
    TooLarge { limit: usize, decompressed: bool },
    /// The compressed stream is not valid gzip/zstd.
    #[error("corrupt {encoding} stream: {reason}")]
    Corrupt {
        encoding: &'static str,
        reason: String,
    },
    /// The client did not send the whole body in time.
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    /// The connection failed while the body was read.
    #[error("reading the request body failed: {0}")]
    Read(String),
}

/// Reads a whole body, refusing it as soon as more than `limit` bytes arrived or
/// `timeout` passed. A single-frame body is returned without copying.
pub async fn read_body(
    body: Incoming,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(timeout, collect(body, limit)).await {
        Ok(r) => r,
        Err(_) => Err(BodyError::Timeout(timeout)),
    }
}

async fn collect(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt;
    let too_large = BodyError::TooLarge {
        limit,
        decompressed: false,
    };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large);
    }
    let mut first: Option<Bytes> = None;
    let mut buf: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let have = first.as_ref().map_or(0, Bytes::len) + buf.as_ref().map_or(0, BytesMut::len);
        if have + data.len() > limit {
            return Err(too_large);
        }
        match (&mut first, &mut buf) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                let hint = (body.size_hint().lower() as usize).min(limit);
                let mut b = BytesMut::with_capacity((f.len() + data.len() + hint).min(limit));
                b.extend_from_slice(f);
                b.extend_from_slice(&data);
                first = None;
                buf = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&data),
        }
    }
    Ok(match (first, buf) {
        (_, Some(b)) => b.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
}

/// Decompresses `input`, refusing it once the output would exceed `limit` bytes: at most
/// `limit + 1` bytes are ever produced.
pub fn decompress(encoding: Encoding, input: Bytes, limit: usize) -> Result<Bytes, BodyError> {
    let corrupt = |e: std::io::Error| BodyError::Corrupt {
        encoding: encoding.as_str(),
        reason: e.to_string(),
    };
    match encoding {
        Encoding::Identity if input.len() > limit => Err(BodyError::TooLarge {
            limit,
            decompressed: false,
        }),
        Encoding::Identity => Ok(input),
        Encoding::Gzip => read_bounded(
            flate2::read::MultiGzDecoder::new(&input[..]),
            input.len(),
            limit,
        )
        .map_err(corrupt)?,
        Encoding::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(&input[..]).map_err(corrupt)?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(corrupt)?;
            read_bounded(d, input.len(), limit).map_err(corrupt)?
        }
    }
}

/// Reads a decoder to its end or to `limit + 1` bytes, whichever comes first.
fn read_bounded<R: Read>(
    r: R,
    input_len: usize,
    limit: usize,
) -> std::io::Result<Result<Bytes, BodyError>> {
    let mut out = Vec::with_capacity(input_len.saturating_mul(4).min(limit).max(64));
    r.take(limit as u64 + 1).read_to_end(&mut out)?;
    if out.len() > limit {
        return Ok(Err(BodyError::TooLarge {
            limit,
            decompressed: true,
        }));
    }
    Ok(Ok(Bytes::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    #[test]
    fn bomb_is_refused_at_the_limit() {
        let bomb = gzip(&vec![0u8; 50 << 20]);
        assert!(
            bomb.len() < 1 << 20,
            "the compressed bomb fits under the limit"
        );
        let err = decompress(Encoding::Gzip, bomb, 1 << 20).unwrap_err();
        assert_eq!(
            err,
            BodyError::TooLarge {
                limit: 1 << 20,
                decompressed: true
            }
        );
        let z = Bytes::from(zstd::encode_all(&vec![1u8; 10 << 20][..], 3).unwrap());
        assert!(matches!(
            decompress(Encoding::Zstd, z, 1 << 20),
            Err(BodyError::TooLarge { .. })
        ));
    }

    #[test]
    fn roundtrips_and_reports_corruption() {
        let data = b"hello otlp".repeat(100);
        assert_eq!(
            decompress(Encoding::Gzip, gzip(&data), 1 << 20).unwrap(),
            &data[..]
        );
        let z = Bytes::from(zstd::encode_all(&data[..], 3).unwrap());
        assert_eq!(decompress(Encoding::Zstd, z, 1 << 20).unwrap(), &data[..]);
        let bad = Bytes::from_static(b"\x1f\x8b\x08\x00garbage-garbage");
        assert!(matches!(
            decompress(Encoding::Gzip, bad, 100),
            Err(BodyError::Corrupt { .. })
        ));
        assert!(matches!(
            decompress(Encoding::Zstd, Bytes::from_static(b"nope"), 100),
            Err(BodyError::Corrupt { .. })
        ));
    }

    #[test]
    fn parses_encodings() {
        assert_eq!(Encoding::parse(None), Ok(Encoding::Identity));
        assert_eq!(Encoding::parse(Some(b"GZIP")), Ok(Encoding::Gzip));
        assert_eq!(Encoding::parse(Some(b"br")), Err("br".to_string()));
    }
}
