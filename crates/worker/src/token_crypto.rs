//! Encryption at rest of OAuth tokens (and webhook signing secrets): XChaCha20-Poly1305 (an AEAD) under keys from settings.
//! Every sealed token names the key that sealed it, so keys rotate without a migration: tokens
//! are opened with whichever configured key they name and sealed with the current one (and
//! resealed when next touched). The associated data binds a token to its user and purpose, so a
//! ciphertext copied into another user's row does not open.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use tubewatch_core::UserId;
use tubewatch_store::SealedToken;

const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenCryptoError {
    #[error("token key {0:?}: expected {KEY_LEN} bytes as 64 hex digits")]
    BadKey(String),
    #[error("token key id {0:?}: use 1–32 letters, digits, '-' or '_'")]
    BadKeyId(String),
    #[error("token key id {0:?} is configured twice")]
    DuplicateKeyId(String),
    #[error("the current token key {0:?} is not among the configured keys")]
    NoCurrentKey(String),
    #[error("the token was sealed with key {0:?}, which is not configured")]
    UnknownKey(String),
    #[error("the sealed token does not open (wrong key, or tampered with)")]
    Corrupt,
}

/// The configured token keys; `current` seals, any of them opens.
#[derive(Clone)]
pub struct TokenKeyring {
    current: String,
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl fmt::Debug for TokenKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("TokenKeyring").field("current", &self.current).field("key_ids", &ids).finish()
    }
}

/// What a sealed token is for, bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Refresh,
    Access,
    /// A user's webhook signing secret.
    WebhookSecret,
}

fn associated_data(user: UserId, purpose: TokenPurpose) -> Vec<u8> {
    let purpose = match purpose {
        TokenPurpose::Refresh => "youtube-oauth/refresh",
        TokenPurpose::Access => "youtube-oauth/access",
        TokenPurpose::WebhookSecret => "webhook/secret",
    };
    format!("tubewatch/{purpose}/user/{}", user.get()).into_bytes()
}

fn parse_hex_key(id: &str, hex: &str) -> Result<[u8; KEY_LEN], TokenCryptoError> {
    let hex = hex.trim();
    if hex.len() != KEY_LEN * 2 || !hex.is_ascii() {
        return Err(TokenCryptoError::BadKey(id.to_owned()));
    }
    let mut out = [0u8; KEY_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| TokenCryptoError::BadKey(id.to_owned()))?;
    }
    Ok(out)
}

impl TokenKeyring {
    /// `keys` are `(id, 64 hex digits)`; `current` names the key that seals.
    pub fn from_hex(current: &str, keys: &[(String, String)]) -> Result<Self, TokenCryptoError> {
        let mut parsed = Vec::with_capacity(keys.len());
        for (id, hex) in keys {
            let id_ok =
                (1..=32).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok {
                return Err(TokenCryptoError::BadKeyId(id.clone()));
            }
            if parsed.iter().any(|(other, _)| other == id) {
                return Err(TokenCryptoError::DuplicateKeyId(id.clone()));
            }
            let key = parse_hex_key(id, hex)?;
            parsed.push((id.clone(), XChaCha20Poly1305::new(&key.into())));
        }
        if !parsed.iter().any(|(id, _)| id == current) {
            return Err(TokenCryptoError::NoCurrentKey(current.to_owned()));
        }
        Ok(Self { current: current.to_owned(), keys: parsed })
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    fn cipher(&self, id: &str) -> Option<&XChaCha20Poly1305> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, c)| c)
    }

    /// Seals `token` with the current key and a fresh random nonce.
    pub fn seal(&self, user: UserId, purpose: TokenPurpose, token: &str) -> Result<SealedToken, TokenCryptoError> {
        let cipher = self.cipher(&self.current).ok_or_else(|| TokenCryptoError::NoCurrentKey(self.current.clone()))?;
        // 192-bit random nonces: collisions are negligible however many tokens are sealed.
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let aad = associated_data(user, purpose);
        let ciphertext = cipher
            .encrypt(&nonce, Payload { msg: token.as_bytes(), aad: &aad })
            .map_err(|_| TokenCryptoError::Corrupt)?;
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(SealedToken { key_id: self.current.clone(), sealed })
    }

    /// Opens a token sealed by any configured key for this user and purpose.
    pub fn open(&self, user: UserId, purpose: TokenPurpose, token: &SealedToken) -> Result<String, TokenCryptoError> {
        let cipher = self.cipher(&token.key_id).ok_or_else(|| TokenCryptoError::UnknownKey(token.key_id.clone()))?;
        if token.sealed.len() < NONCE_LEN {
            return Err(TokenCryptoError::Corrupt);
        }
        let (nonce, ciphertext) = token.sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| TokenCryptoError::Corrupt)?;
        let aad = associated_data(user, purpose);
        let plain = cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| TokenCryptoError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| TokenCryptoError::Corrupt)
    }

    /// True when the token was sealed with an older key and should be sealed again.
    pub fn needs_reseal(&self, token: &SealedToken) -> bool {
        token.key_id != self.current
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";

    fn ring(current: &str, keys: &[(&str, &str)]) -> TokenKeyring {
        let keys: Vec<(String, String)> = keys.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
        TokenKeyring::from_hex(current, &keys).unwrap()
    }

    #[test]
    fn seals_without_plaintext_and_opens_only_for_its_user_and_purpose() {
        let r = ring("k1", &[("k1", K1)]);
        let token = "1//sim-refresh-token-abcdef";
        let sealed = r.seal(UserId::new(7), TokenPurpose::Refresh, token).unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert!(!sealed.sealed.windows(token.len()).any(|w| w == token.as_bytes()), "no plaintext in the ciphertext");
        assert_eq!(r.open(UserId::new(7), TokenPurpose::Refresh, &sealed).unwrap(), token);
        assert_eq!(r.open(UserId::new(8), TokenPurpose::Refresh, &sealed), Err(TokenCryptoError::Corrupt));
        assert_eq!(r.open(UserId::new(7), TokenPurpose::Access, &sealed), Err(TokenCryptoError::Corrupt));
        // Two seals of one token differ (fresh nonces).
        assert_ne!(r.seal(UserId::new(7), TokenPurpose::Refresh, token).unwrap().sealed, sealed.sealed);
        // Any flipped bit is detected.
        let mut tampered = sealed.clone();
        let last = tampered.sealed.len() - 1;
        tampered.sealed[last] ^= 1;
        assert_eq!(r.open(UserId::new(7), TokenPurpose::Refresh, &tampered), Err(TokenCryptoError::Corrupt));
        tampered.sealed.truncate(10);
        assert_eq!(r.open(UserId::new(7), TokenPurpose::Refresh, &tampered), Err(TokenCryptoError::Corrupt));
    }

    #[test]
    fn keys_rotate() {
        let old = ring("k1", &[("k1", K1)]);
        let sealed = old.seal(UserId::new(1), TokenPurpose::Refresh, "secret").unwrap();
        let rotated = ring("k2", &[("k1", K1), ("k2", K2)]);
        assert!(rotated.needs_reseal(&sealed));
        assert_eq!(rotated.open(UserId::new(1), TokenPurpose::Refresh, &sealed).unwrap(), "secret");
        let resealed = rotated.seal(UserId::new(1), TokenPurpose::Refresh, "secret").unwrap();
        assert_eq!(resealed.key_id, "k2");
        assert!(!rotated.needs_reseal(&resealed));
        // Once k1 is retired, its tokens name a key that is gone.
        let retired = ring("k2", &[("k2", K2)]);
        assert_eq!(
            retired.open(UserId::new(1), TokenPurpose::Refresh, &sealed),
            Err(TokenCryptoError::UnknownKey("k1".into()))
        );
        assert_eq!(retired.open(UserId::new(1), TokenPurpose::Refresh, &resealed).unwrap(), "secret");
        // The same id with another key does not open it.
        let wrong = ring("k1", &[("k1", K2)]);
        assert_eq!(wrong.open(UserId::new(1), TokenPurpose::Refresh, &sealed), Err(TokenCryptoError::Corrupt));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let keys = |v: &[(&str, &str)]| v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect::<Vec<_>>();
        assert_eq!(
            TokenKeyring::from_hex("k1", &keys(&[("k1", "abcd")])).unwrap_err(),
            TokenCryptoError::BadKey("k1".into())
        );
        let not_hex = "zz".repeat(32);
        assert!(matches!(TokenKeyring::from_hex("k1", &keys(&[("k1", &not_hex)])), Err(TokenCryptoError::BadKey(_))));
        assert!(matches!(TokenKeyring::from_hex("k 1", &keys(&[("k 1", K1)])), Err(TokenCryptoError::BadKeyId(_))));
        assert!(matches!(
            TokenKeyring::from_hex("k1", &keys(&[("k1", K1), ("k1", K2)])),
            Err(TokenCryptoError::DuplicateKeyId(_))
        ));
        assert!(matches!(TokenKeyring::from_hex("k3", &keys(&[("k1", K1)])), Err(TokenCryptoError::NoCurrentKey(_))));
        assert!(!format!("{:?}", ring("k1", &[("k1", K1)])).contains(K1), "Debug shows ids, never keys");
    }
}
