//! Thumbnails (`/vi/ID/{default,mqdefault,hqdefault,sddefault,maxresdefault}.jpg`): sizes, the
//! content hash (did the bytes change?), the perceptual hash (did the *picture* change, or was it
//! merely re-encoded?), and recognising YouTube's grey placeholder served with a 404.

use std::fmt;

use image::DynamicImage;
use image_hasher::{HashAlg, HasherConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::YoutubeError;
use crate::sniff;

/// The thumbnail sizes YouTube serves for every video (`maxresdefault` only for HD uploads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThumbnailSize {
    /// `default.jpg`, 120×90: what change detection fetches every check.
    Default,
    /// `mqdefault.jpg`, 320×180.
    Medium,
    /// `hqdefault.jpg`, 480×360.
    High,
    /// `sddefault.jpg`, 640×480.
    Standard,
    /// `maxresdefault.jpg`, 1280×720 (absent for low-resolution uploads).
    MaxRes,
}

impl ThumbnailSize {
    pub const ALL: [ThumbnailSize; 5] = [Self::Default, Self::Medium, Self::High, Self::Standard, Self::MaxRes];

    /// The file name YouTube uses, without extension.
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Medium => "mqdefault",
            Self::High => "hqdefault",
            Self::Standard => "sddefault",
            Self::MaxRes => "maxresdefault",
        }
    }

    /// Nominal pixel size (width, height).
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            Self::Default => (120, 90),
            Self::Medium => (320, 180),
            Self::High => (480, 360),
            Self::Standard => (640, 480),
            Self::MaxRes => (1280, 720),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.strip_suffix(".jpg").unwrap_or(s);
        Self::ALL.into_iter().find(|size| size.name() == s)
    }
}

/// Largest Hamming distance (out of 256 bits) at which two perceptual hashes are taken to be the
/// same picture. Re-encoding a thumbnail at another JPEG quality moves a few bits; a different
/// picture moves around half of them. Chosen from the tests in this module, with margin on both
/// sides.
pub const SAME_PICTURE_MAX_DISTANCE: u32 = 40;

/// A 256-bit gradient hash of the picture (not the bytes), shown and stored as hex.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PerceptualHash(Vec<u8>);

impl PerceptualHash {
    pub fn of_image(img: &DynamicImage) -> Self {
        // Gradient hashing on a 16x16 grid (17x16 samples) is robust to re-encoding and resizing
        // and cheap enough to run on every check.
        let hasher = HasherConfig::new().hash_size(16, 16).hash_alg(HashAlg::Gradient).to_hasher();
        Self(hasher.hash_image(img).as_bytes().to_vec())
    }

    /// Number of differing bits; hashes of different lengths are maximally distant.
    pub fn distance(&self, other: &Self) -> u32 {
        if self.0.len() != other.0.len() {
            return u32::MAX;
        }
        self.0.iter().zip(&other.0).map(|(a, b)| (a ^ b).count_ones()).sum()
    }

    /// True when the two hashes are of the same picture (possibly re-encoded or resized).
    pub fn same_picture(&self, other: &Self) -> bool {
        self.distance(other) <= SAME_PICTURE_MAX_DISTANCE
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        if !s.len().is_multiple_of(2) || s.is_empty() {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
        bytes.map(Self)
    }
}

impl fmt::Debug for PerceptualHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PerceptualHash({})", self.to_hex())
    }
}

impl fmt::Display for PerceptualHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl From<PerceptualHash> for String {
    fn from(h: PerceptualHash) -> String {
        h.to_hex()
    }
}

impl TryFrom<String> for PerceptualHash {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::from_hex(&s).ok_or_else(|| format!("not a perceptual hash: {s:?}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// SHA-256 of the bytes, lower-case hex: equal exactly when the file is unchanged.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(Sha256::digest(bytes).as_slice())
}

/// The hashes and size of a decoded thumbnail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThumbnailHashes {
    pub sha256: String,
    pub phash: PerceptualHash,
    pub width: u32,
    pub height: u32,
    /// The detected format (`jpeg`, `png`).
    pub format: String,
}

/// The image's format, from its first bytes, without decoding it. Bytes that are not a JPEG or
/// PNG are `InvalidImage`; a JPEG whose end marker is missing is reported as truncated (retryable).
fn image_format(bytes: &[u8]) -> Result<image::ImageFormat, YoutubeError> {
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| matches!(f, image::ImageFormat::Jpeg | image::ImageFormat::Png))
        .ok_or_else(|| YoutubeError::InvalidImage("not a JPEG or PNG image".into()))?;
    let is_jpeg = format == image::ImageFormat::Jpeg;
    if is_jpeg && !bytes.ends_with(&[0xFF, 0xD9]) && !bytes.ends_with(&[0xFF, 0xD9, 0x0A]) {
        return Err(YoutubeError::truncated("JPEG without its end marker"));
    }
    Ok(format)
}

/// Decodes an image and hashes it. Bytes that are not a JPEG or PNG are `InvalidImage`; a JPEG
/// whose end marker is missing is reported as truncated (retryable).
pub fn hash_image_bytes(bytes: &[u8]) -> Result<ThumbnailHashes, YoutubeError> {
    let format = image_format(bytes)?;
    let img = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| YoutubeError::InvalidImage(format!("cannot decode the {format:?} image: {e}")))?;
    Ok(ThumbnailHashes {
        sha256: sha256_hex(bytes),
        phash: PerceptualHash::of_image(&img),
        width: img.width(),
        height: img.height(),
        format: format!("{format:?}").to_lowercase(),
    })
}

/// Interprets a thumbnail response. YouTube answers a missing size (or video) with 404 and a
/// grey placeholder JPEG: that must never be taken for the video's thumbnail.
pub fn classify_thumbnail_response(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<ThumbnailHashes, YoutubeError> {
    check_thumbnail_response(status, content_type, body)?;
    hash_image_bytes(body)
}

/// [`classify_thumbnail_response`] without decoding the picture: the response is a whole JPEG or
/// PNG of the video's own (not the placeholder, not an HTML page), as archiving a size needs. A
/// 480×360 picture decoded only to be hashed costs about 0.7 MB of buffers and its decoding time.
pub fn check_thumbnail_bytes(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<(), YoutubeError> {
    check_thumbnail_response(status, content_type, body)?;
    image_format(body).map(|_| ())
}

/// The status and body checks every thumbnail response passes before its bytes are read.
fn check_thumbnail_response(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<(), YoutubeError> {
    let is_image = content_type.is_some_and(|c| c.starts_with("image/")) || image::guess_format(body).is_ok();
    match status {
        200 => {
            if sniff::looks_like_html(body) {
                return Err(sniff::classify_html(body, "thumbnail image"));
            }
            if body.is_empty() {
                return Err(YoutubeError::truncated("empty thumbnail body"));
            }
            Ok(())
        }
        404 if is_image => Err(YoutubeError::not_found("thumbnail (YouTube's grey placeholder, served with 404)")),
        404 | 410 => Err(YoutubeError::not_found("thumbnail")),
        429 => Err(YoutubeError::RateLimited { detail: "HTTP 429 on thumbnail".into(), retry_after: None }),
        s => Err(YoutubeError::Http { status: Some(s), message: "unexpected status for thumbnail".into() }),
    }
}
