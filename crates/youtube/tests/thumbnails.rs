//! Perceptual and content hashing on real images generated here: a re-encode is the same
//! picture, a different picture is not, and the bytes' SHA-256 tells every re-encode apart.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageEncoder, Rgb, RgbImage};
use tubewatch_youtube::{
    ErrorKind, PerceptualHash, SAME_PICTURE_MAX_DISTANCE, ThumbnailSize, check_thumbnail_bytes,
    classify_thumbnail_response, hash_image_bytes,
};

/// A thumbnail-like picture: a diagonal gradient with a bright disc and a dark bar, placed by
/// `variant` so that two variants are different pictures.
fn picture(width: u32, height: u32, variant: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let (cx, cy) = if variant == 0 { (0.3, 0.4) } else { (0.75, 0.65) };
        let in_disc = (fx - cx).powi(2) + (fy - cy).powi(2) < 0.04;
        let in_bar = if variant == 0 { fy > 0.75 && fy < 0.9 } else { fx > 0.1 && fx < 0.2 };
        if in_disc {
            Rgb([250, 220, 40])
        } else if in_bar {
            Rgb([20, 20, 30])
        } else if variant == 0 {
            Rgb([(fx * 200.0) as u8, (fy * 180.0) as u8, 120])
        } else {
            Rgb([60, (fx * 220.0) as u8, ((1.0 - fy) * 200.0) as u8])
        }
    })
}

fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img.clone()).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn reencode_is_the_same_picture_and_a_change_is_not() {
    let a = picture(120, 90, 0);
    let b = picture(120, 90, 1);
    let a_hi = hash_image_bytes(&jpeg(&a, 95)).unwrap();
    let a_lo = hash_image_bytes(&jpeg(&a, 35)).unwrap();
    let a_png = hash_image_bytes(&png(&a)).unwrap();
    let a_big = hash_image_bytes(&jpeg(&picture(480, 360, 0), 80)).unwrap();
    let b_hi = hash_image_bytes(&jpeg(&b, 95)).unwrap();

    assert_ne!(a_hi.sha256, a_lo.sha256, "bytes differ after re-encoding");
    assert_eq!(a_hi.sha256.len(), 64);
    assert_eq!((a_hi.width, a_hi.height), (120, 90));
    assert_eq!(a_hi.format, "jpeg");
    assert_eq!(a_png.format, "png");

    let same = [a_hi.phash.distance(&a_lo.phash), a_hi.phash.distance(&a_png.phash), a_hi.phash.distance(&a_big.phash)];
    let different = a_hi.phash.distance(&b_hi.phash);
    println!("same-picture distances {same:?}, different picture {different} (threshold {SAME_PICTURE_MAX_DISTANCE})");
    assert!(a_hi.phash.same_picture(&a_lo.phash), "quality 95 vs 35: {}", same[0]);
    assert!(a_hi.phash.same_picture(&a_png.phash), "jpeg vs png: {}", same[1]);
    assert!(a_hi.phash.same_picture(&a_big.phash), "120x90 vs 480x360: {}", same[2]);
    assert!(!a_hi.phash.same_picture(&b_hi.phash), "different pictures: {different}");
    assert!(different > 2 * SAME_PICTURE_MAX_DISTANCE, "a real change is far from the threshold: {different}");
}

#[test]
fn perceptual_hash_round_trips_through_text() {
    let h = hash_image_bytes(&jpeg(&picture(120, 90, 0), 90)).unwrap().phash;
    assert_eq!(h.to_hex().len(), 64);
    assert_eq!(PerceptualHash::from_hex(&h.to_hex()), Some(h.clone()));
    let json = serde_json::to_string(&h).unwrap();
    assert_eq!(serde_json::from_str::<PerceptualHash>(&json).unwrap(), h);
    assert!(PerceptualHash::from_hex("xyz").is_none());
    assert_eq!(h.distance(&PerceptualHash::from_hex("00").unwrap()), u32::MAX);
}

#[test]
fn grey_placeholder_with_404_is_not_a_thumbnail() {
    let grey = RgbImage::from_pixel(120, 90, Rgb([204, 204, 204]));
    let err = classify_thumbnail_response(404, Some("image/jpeg"), &jpeg(&grey, 80)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("placeholder"), "{err}");
    assert!(err.is_permanent());
}

#[test]
fn broken_thumbnails_are_classified() {
    let good = jpeg(&picture(120, 90, 0), 90);
    assert!(classify_thumbnail_response(200, Some("image/jpeg"), &good).is_ok());
    let cut = classify_thumbnail_response(200, Some("image/jpeg"), &good[..good.len() / 2]).unwrap_err();
    assert_eq!(cut.kind(), ErrorKind::Malformed);
    assert!(cut.is_retryable(), "a cut JPEG is transient");
    let html = classify_thumbnail_response(200, Some("text/html"), b"<!DOCTYPE html><html>consent.youtube.com</html>");
    assert_eq!(html.unwrap_err().kind(), ErrorKind::Consent);
    assert_eq!(classify_thumbnail_response(200, None, b"GIF89a....").unwrap_err().kind(), ErrorKind::InvalidImage);
    assert_eq!(classify_thumbnail_response(404, Some("text/html"), b"nope").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(classify_thumbnail_response(503, None, b"").unwrap_err().kind(), ErrorKind::Http);
}

/// A size fetched only to be archived is not decoded, but it is refused exactly where a hashed one
/// is: YouTube's placeholder, an HTML page, a cut JPEG, something not a JPEG or PNG.
#[test]
fn archived_thumbnails_are_checked_as_hashed_ones_are() {
    let good = jpeg(&picture(480, 360, 0), 85);
    let grey = jpeg(&RgbImage::from_pixel(480, 360, Rgb([204, 204, 204])), 80);
    let html: &[u8] = b"<!DOCTYPE html><html>consent.youtube.com</html>";
    let cases: [(u16, Option<&str>, &[u8]); 8] = [
        (200, Some("image/jpeg"), &good),
        (200, Some("image/png"), &png(&picture(120, 90, 1))),
        (404, Some("image/jpeg"), &grey),
        (200, Some("image/jpeg"), &good[..good.len() / 2]),
        (200, Some("text/html"), html),
        (200, None, b"GIF89a...."),
        (200, Some("image/jpeg"), b""),
        (503, None, b""),
    ];
    for (status, content_type, body) in cases {
        let hashed = classify_thumbnail_response(status, content_type, body).map(|_| ()).map_err(|e| e.kind());
        let checked = check_thumbnail_bytes(status, content_type, body).map_err(|e| e.kind());
        assert_eq!(checked, hashed, "HTTP {status} {content_type:?}, {} bytes", body.len());
    }
    assert!(check_thumbnail_bytes(200, Some("image/jpeg"), &good).is_ok());
    assert_eq!(check_thumbnail_bytes(404, Some("image/jpeg"), &grey).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn sizes_have_youtube_names() {
    let names: Vec<&str> = ThumbnailSize::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["default", "mqdefault", "hqdefault", "sddefault", "maxresdefault"]);
    assert_eq!(ThumbnailSize::parse("hqdefault.jpg"), Some(ThumbnailSize::High));
    assert_eq!(ThumbnailSize::Default.dimensions(), (120, 90));
    assert_eq!(ThumbnailSize::parse("huge"), None);
}
