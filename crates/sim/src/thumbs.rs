//! Thumbnails: real JPEGs at YouTube's sizes, whose look is a pure function of the live variant
//! (a generated picture for the creator's variants, the uploaded image for API variants), so a
//! change of variant changes both the bytes and the perceptual hash while the same variant is
//! byte-identical every time. Encoding is costly, so encoded images are kept in a bounded cache.

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::sync::Mutex;

use axum::body::Bytes;
use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, Rgb, RgbImage, imageops};

use crate::rng;

/// The thumbnail names YouTube serves under `/vi/ID/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThumbSize {
    Default,
    Medium,
    High,
    Standard,
    Maxres,
}

impl ThumbSize {
    pub const ALL: [ThumbSize; 5] =
        [ThumbSize::Default, ThumbSize::Medium, ThumbSize::High, ThumbSize::Standard, ThumbSize::Maxres];

    /// From a file name such as `hqdefault.jpg`.
    pub fn from_file_name(name: &str) -> Option<Self> {
        Some(match name {
            "default.jpg" => ThumbSize::Default,
            "mqdefault.jpg" => ThumbSize::Medium,
            "hqdefault.jpg" => ThumbSize::High,
            "sddefault.jpg" => ThumbSize::Standard,
            "maxresdefault.jpg" => ThumbSize::Maxres,
            _ => return None,
        })
    }

    pub fn file_name(self) -> &'static str {
        match self {
            ThumbSize::Default => "default.jpg",
            ThumbSize::Medium => "mqdefault.jpg",
            ThumbSize::High => "hqdefault.jpg",
            ThumbSize::Standard => "sddefault.jpg",
            ThumbSize::Maxres => "maxresdefault.jpg",
        }
    }

    /// The Data API's name for the size (`snippet.thumbnails.<key>`).
    pub fn api_key(self) -> &'static str {
        match self {
            ThumbSize::Default => "default",
            ThumbSize::Medium => "medium",
            ThumbSize::High => "high",
            ThumbSize::Standard => "standard",
            ThumbSize::Maxres => "maxres",
        }
    }

    pub fn dimensions(self) -> (u32, u32) {
        match self {
            ThumbSize::Default => (120, 90),
            ThumbSize::Medium => (320, 180),
            ThumbSize::High => (480, 360),
            ThumbSize::Standard => (640, 480),
            ThumbSize::Maxres => (1280, 720),
        }
    }

    /// The 16:9 picture area: the 4:3 sizes carry it between black bars, as YouTube's do.
    fn picture_area(self) -> (u32, u32, u32) {
        let (w, h) = self.dimensions();
        let ph = w * 9 / 16;
        (w, ph.min(h), (h - ph.min(h)) / 2)
    }
}

/// What a thumbnail shows.
#[derive(Debug, Clone)]
pub enum ThumbSource {
    /// A picture drawn from this 64-bit look (one per creator variant of one video).
    Generated(u64),
    /// An uploaded image (JPEG or PNG bytes, already validated).
    Uploaded(std::sync::Arc<Vec<u8>>),
}

fn color(h: u64) -> Rgb<u8> {
    Rgb([(h & 0xff) as u8, ((h >> 8) & 0xff) as u8, ((h >> 16) & 0xff) as u8])
}

/// Draws a generated picture into a `w`×`h` area: a two-colour gradient, a few bold shapes in
/// contrasting colours (the "face and arrow" school of thumbnails) and a caption bar. Positions
/// are relative, so every size shows the same picture.
fn draw_generated(look: u64, w: u32, h: u32) -> RgbImage {
    let top = color(rng::hash(look, &[1]));
    let bottom = color(rng::hash(look, &[2]));
    let mut img = RgbImage::from_fn(w, h, |_, y| {
        let t = f64::from(y) / f64::from(h.max(1));
        let mix = |a: u8, b: u8| (f64::from(a) * (1.0 - t) + f64::from(b) * t) as u8;
        Rgb([mix(top[0], bottom[0]), mix(top[1], bottom[1]), mix(top[2], bottom[2])])
    });
    let shapes = 3 + rng::hash(look, &[3]) % 3;
    for i in 0..shapes {
        let hs = |k: u64| rng::unit(rng::hash(look, &[10 + i, k]));
        let fill = color(rng::hash(look, &[20 + i]));
        let (cx, cy) = (hs(1) * f64::from(w), hs(2) * f64::from(h));
        let r = (0.12 + 0.25 * hs(3)) * f64::from(h);
        let circle = hs(4) < 0.5;
        let x0 = (cx - r).max(0.0) as u32;
        let x1 = ((cx + r) as u32).min(w);
        let y0 = (cy - r).max(0.0) as u32;
        let y1 = ((cy + r) as u32).min(h);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
                if !circle || dx * dx + dy * dy <= r * r {
                    img.put_pixel(x, y, fill);
                }
            }
        }
    }
    // Caption bar: a dark band with light "words" at the bottom.
    let bar_top = h * 3 / 4;
    for y in bar_top..h {
        for x in 0..w {
            img.put_pixel(x, y, Rgb([20, 20, 20]));
        }
    }
    let mut x = w / 20;
    let mut word = 0;
    while x < w * 9 / 10 {
        let len = ((0.06 + 0.1 * rng::unit(rng::hash(look, &[40, word]))) * f64::from(w)) as u32;
        for y in (bar_top + (h - bar_top) / 3)..(h - (h - bar_top) / 3) {
            for xx in x..(x + len).min(w) {
                img.put_pixel(xx, y, Rgb([240, 240, 240]));
            }
        }
        x += len + w / 40 + 1;
        word += 1;
    }
    img
}

/// Renders a thumbnail at a size: the picture scaled into the 16:9 area, letterboxed in black.
fn render(source: &ThumbSource, size: ThumbSize) -> Result<RgbImage, image::ImageError> {
    let (w, h) = size.dimensions();
    let (pw, ph, bar) = size.picture_area();
    let picture = match source {
        ThumbSource::Generated(look) => draw_generated(*look, pw, ph),
        ThumbSource::Uploaded(bytes) => {
            let decoded = image::load_from_memory(bytes)?.to_rgb8();
            imageops::resize(&decoded, pw, ph, imageops::FilterType::Triangle)
        }
    };
    if (pw, ph) == (w, h) {
        return Ok(picture);
    }
    let mut canvas = RgbImage::from_pixel(w, h, Rgb([0, 0, 0]));
    imageops::replace(&mut canvas, &picture, 0, i64::from(bar));
    Ok(canvas)
}

fn encode_jpeg(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 85).encode_image(img)?;
    Ok(out)
}

/// Renders and encodes a thumbnail (costly: call through [`ThumbCache`]).
pub fn encode(source: &ThumbSource, size: ThumbSize) -> Result<Vec<u8>, image::ImageError> {
    encode_jpeg(&render(source, size)?)
}

/// YouTube's grey placeholder, served with a 404 for a size a video lacks.
pub fn placeholder() -> Vec<u8> {
    let mut img = RgbImage::from_pixel(120, 90, Rgb([204, 204, 204]));
    // The faint "no picture" glyph in the middle.
    for y in 35..55 {
        for x in 48..72 {
            img.put_pixel(x, y, Rgb([180, 180, 180]));
        }
    }
    encode_jpeg(&img).unwrap_or_default()
}

/// Checks that uploaded bytes are a JPEG or PNG image and returns its dimensions.
pub fn validate_upload(bytes: &[u8]) -> Result<(u32, u32), String> {
    let format = image::guess_format(bytes).map_err(|_| "the body is not a JPEG or PNG image".to_owned())?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
        return Err(format!("unsupported image format {format:?}: use JPEG or PNG"));
    }
    let img = image::ImageReader::with_format(Cursor::new(bytes), format)
        .decode()
        .map_err(|e| format!("the image could not be decoded: {e}"))?;
    Ok((img.width(), img.height()))
}

/// A bounded cache of encoded thumbnails, evicting the oldest entries first.
#[derive(Debug)]
pub struct ThumbCache {
    inner: Mutex<CacheInner>,
    capacity_bytes: usize,
}

#[derive(Debug, Default)]
struct CacheInner {
    map: HashMap<(String, ThumbSize), Bytes>,
    order: VecDeque<(String, ThumbSize)>,
    bytes: usize,
}

impl ThumbCache {
    pub fn new(capacity_bytes: usize) -> Self {
        Self { inner: Mutex::new(CacheInner::default()), capacity_bytes }
    }

    pub fn get(&self, key: &str, size: ThumbSize) -> Option<Bytes> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.map.get(&(key.to_owned(), size)).cloned()
    }

    pub fn put(&self, key: &str, size: ThumbSize, data: Bytes) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let k = (key.to_owned(), size);
        if inner.map.contains_key(&k) || data.len() > self.capacity_bytes {
            return;
        }
        inner.bytes += data.len();
        inner.map.insert(k.clone(), data);
        inner.order.push_back(k);
        while inner.bytes > self.capacity_bytes {
            let Some(old) = inner.order.pop_front() else { break };
            if let Some(d) = inner.map.remove(&old) {
                inner.bytes -= d.len();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_determinism() {
        for size in ThumbSize::ALL {
            let a = encode(&ThumbSource::Generated(7), size).unwrap();
            let b = encode(&ThumbSource::Generated(7), size).unwrap();
            let c = encode(&ThumbSource::Generated(8), size).unwrap();
            assert_eq!(a, b);
            assert_ne!(a, c);
            let img = image::load_from_memory(&a).unwrap();
            assert_eq!((img.width(), img.height()), size.dimensions());
        }
    }

    #[test]
    fn uploads_are_validated() {
        assert!(validate_upload(b"hello").is_err());
        let jpeg = encode(&ThumbSource::Generated(1), ThumbSize::High).unwrap();
        assert_eq!(validate_upload(&jpeg), Ok((480, 360)));
        let mut truncated = jpeg.clone();
        truncated.truncate(200);
        assert!(validate_upload(&truncated).is_err());
    }

    #[test]
    fn cache_is_bounded() {
        let cache = ThumbCache::new(100);
        for i in 0..10 {
            cache.put(&i.to_string(), ThumbSize::Default, Bytes::from(vec![0u8; 30]));
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get("9", ThumbSize::Default).is_some());
        assert!(cache.get("0", ThumbSize::Default).is_none());
    }
}
