//! Hash-based determinism. Every random property of the world is a pure function of the seed and
//! of *what* is being drawn (channel index, video, hour, purpose), never of the order in which
//! things were asked for. That is what lets the simulator compute any video's views at any time
//! on demand, and two simulators with one seed serve byte-identical responses.

/// splitmix64's finaliser, the same one core's seeded generator steps with.
pub use tubewatch_core::mix64;

/// Hashes a seed and a list of parts (purpose tags, indices) into one 64-bit value.
pub fn hash(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(mix64(seed), |acc, &p| mix64(acc ^ mix64(p)))
}

/// Purpose tags, so that two draws about the same object never share a stream.
pub fn tag(name: &str) -> u64 {
    // FNV-1a: stable across runs and platforms, unlike std's RandomState.
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A uniform draw in [0, 1) from a hash (53 bits of precision).
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform draw in [lo, hi).
pub fn uniform(h: u64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit(h)
}

/// A log-uniform draw in [lo, hi): every decade is equally likely (channel sizes).
pub fn log_uniform(h: u64, lo: f64, hi: f64) -> f64 {
    (lo.ln() + (hi.ln() - lo.ln()) * unit(h)).exp()
}

/// A standard normal draw (Box–Muller on two independent halves of the stream).
pub fn normal(h: u64) -> f64 {
    let u1 = unit(mix64(h ^ 0x5151)).max(1e-12);
    let u2 = unit(mix64(h ^ 0xa3a3));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with median 1 and log-space deviation `sigma`.
pub fn log_normal(h: u64, sigma: f64) -> f64 {
    (sigma * normal(h)).exp()
}

/// Picks an index with probability proportional to `weights`.
pub fn weighted(h: u64, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = unit(h) * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

/// The 64 characters of YouTube ids, in base64url order.
pub const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn id_digit(c: u8) -> Option<u64> {
    ID_ALPHABET.iter().position(|&a| a == c).map(|p| p as u64)
}

/// Encodes 64 bits as an 11-character id. Like real video ids, the last character carries only
/// 4 bits, so it is one of 16 characters.
pub fn encode_id11(v: u64) -> String {
    let mut out = Vec::with_capacity(11);
    for i in 0..10 {
        out.push(ID_ALPHABET[((v >> (58 - 6 * i)) & 63) as usize]);
    }
    out.push(ID_ALPHABET[((v & 15) << 2) as usize]);
    String::from_utf8_lossy(&out).into_owned()
}

/// The inverse of [`encode_id11`]; `None` for anything it could not have produced.
pub fn decode_id11(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 11 {
        return None;
    }
    let mut v = 0u64;
    for &c in &b[..10] {
        v = (v << 6) | id_digit(c)?;
    }
    let last = id_digit(b[10])?;
    if last & 3 != 0 {
        return None;
    }
    Some((v << 4) | (last >> 2))
}

/// A keyed permutation of 64-bit values (a 4-round Feistel network), so that video ids look
/// random yet decode back to (channel, stream, index) without a lookup table.
pub fn permute(key: u64, v: u64) -> u64 {
    let (mut l, mut r) = ((v >> 32) as u32, v as u32);
    for round in 0..4u64 {
        let f = hash(key, &[round, u64::from(r)]) as u32;
        (l, r) = (r, l ^ f);
    }
    (u64::from(l) << 32) | u64::from(r)
}

/// The inverse of [`permute`].
pub fn unpermute(key: u64, v: u64) -> u64 {
    let (mut l, mut r) = ((v >> 32) as u32, v as u32);
    for round in (0..4u64).rev() {
        let f = hash(key, &[round, u64::from(l)]) as u32;
        (l, r) = (r ^ f, l);
    }
    (u64::from(l) << 32) | u64::from(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for v in [0u64, 1, u64::MAX, 0x0123_4567_89ab_cdef, hash(7, &[1, 2, 3])] {
            let s = encode_id11(v);
            assert_eq!(s.len(), 11);
            assert_eq!(decode_id11(&s), Some(v), "{s}");
            assert_eq!(unpermute(99, permute(99, v)), v);
        }
        assert_eq!(decode_id11("dQw4w9WgXcR"), None, "last character must carry 4 bits only");
    }

    #[test]
    fn draws_are_in_range() {
        for i in 0..1000 {
            let h = hash(1, &[i]);
            assert!((0.0..1.0).contains(&unit(h)));
            let x = log_uniform(h, 1e3, 1e7);
            assert!((1e3..1e7).contains(&x));
            assert!(log_normal(h, 0.5) > 0.0);
        }
    }
}
