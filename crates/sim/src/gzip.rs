//! Content-encoding as YouTube's front ends do it: `gzip` when the request's `Accept-Encoding`
//! allows it, with `Content-Encoding: gzip` and `Vary: Accept-Encoding`.
//!
//! A watch page is about 1 MB, almost all of it static padding; compressing it whole per request
//! would make the simulator, not the client, the bottleneck of a burst. So a gzip body is built
//! from deflate pieces: each piece is compressed on its own and ends with a full flush (byte
//! aligned, no back-references into it), so pieces can be concatenated, and the static padding is
//! compressed once. The member's CRC-32 is combined from the pieces' CRCs. What the client
//! receives is one ordinary gzip member, byte for byte what `gzip` could have written.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use flate2::{Compress, Compression, FlushCompress};

/// Whether the request accepts gzip (`Accept-Encoding: gzip`, `*`, without `q=0`).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        value.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused =
                parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
    })
}

/// Marks a response as gzip-encoded (the length changes, so any old `Content-Length` goes).
pub fn set_gzip_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.remove(header::CONTENT_LENGTH);
}

/// One independently compressed stretch of a gzip member.
#[derive(Clone)]
pub struct DeflatePiece {
    /// Raw deflate blocks, none of them final, ending byte-aligned.
    pub deflate: Bytes,
    crc: crc32fast::Hasher,
    len: u64,
}

impl std::fmt::Debug for DeflatePiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeflatePiece({} → {} bytes)", self.len, self.deflate.len())
    }
}

impl DeflatePiece {
    /// Compresses `data` at `level` (1 fast … 9 small) as raw deflate ending in a full flush.
    pub fn compress(data: &[u8], level: u32) -> Self {
        let mut compress = Compress::new(Compression::new(level), false);
        let mut out = Vec::with_capacity(data.len() / 3 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before_in = compress.total_in();
            // `compress_vec` writes into the spare capacity only; it never grows the vector.
            let status = compress.compress_vec(input, &mut out, FlushCompress::Full);
            let consumed = usize::try_from(compress.total_in() - before_in).unwrap_or(input.len());
            input = &input[consumed..];
            let done = input.is_empty() && out.len() < out.capacity();
            if status.is_err() || done {
                break;
            }
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(data);
        Self { deflate: Bytes::from(out), crc, len: data.len() as u64 }
    }
}

/// The 10-byte gzip member header: deflate, no name, no time, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
/// An empty final block with fixed Huffman codes: what ends the member's deflate stream.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// The chunks of one gzip member holding the pieces' data in order.
pub fn member(pieces: &[&DeflatePiece]) -> Vec<Bytes> {
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0u64;
    let mut chunks = Vec::with_capacity(pieces.len() + 2);
    chunks.push(Bytes::from_static(&HEADER));
    for piece in pieces {
        crc.combine(&piece.crc);
        len += piece.len;
        chunks.push(piece.deflate.clone());
    }
    let mut trailer = Vec::with_capacity(10);
    trailer.extend_from_slice(&FINAL_BLOCK);
    trailer.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32.
    trailer.extend_from_slice(&((len & 0xffff_ffff) as u32).to_le_bytes());
    chunks.push(Bytes::from(trailer));
    chunks
}

/// A whole body as one gzip member (for the small documents: feeds, player JSON).
pub fn gzip(data: &[u8], level: u32) -> Bytes {
    let piece = DeflatePiece::compress(data, level);
    let chunks = member(&[&piece]);
    let mut out = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
    for c in &chunks {
        out.extend_from_slice(c);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data).read_to_end(&mut out).expect("a valid gzip member");
        out
    }

    #[test]
    fn pieces_concatenate_into_one_valid_member() {
        let big: Vec<u8> =
            (0..300_000u32).flat_map(|i| format!("\"flag_{}\":{},", i % 977, i % 7 == 0).into_bytes()).collect();
        let parts: [&[u8]; 4] = [b"<html><head>", &big, b"var ytInitialPlayerResponse = {};", b""];
        let pieces: Vec<DeflatePiece> = parts.iter().map(|p| DeflatePiece::compress(p, 6)).collect();
        let body: Vec<u8> = member(&pieces.iter().collect::<Vec<_>>()).concat();
        assert_eq!(gunzip(&body), parts.concat());
        assert!(body.len() < big.len() / 3, "the padding compresses");
    }

    #[test]
    fn accept_encoding_is_read_like_a_server_does() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).expect("header"));
            accepts_gzip(&h)
        };
        assert!(with("gzip"));
        assert!(with("br, gzip;q=0.8, deflate"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
        assert_eq!(gunzip(&gzip(b"hello", 1)), b"hello");
    }
}
