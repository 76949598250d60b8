//! Validated identifiers. Each has a `parse` constructor; an invalid value cannot be represented.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a video id: {0:?} (expected 11 characters of A-Z, a-z, 0-9, '_' or '-')")]
    Video(String),
    #[error("not a channel id: {0:?} (expected 'UC' followed by 22 characters of A-Z, a-z, 0-9, '_' or '-')")]
    Channel(String),
    #[error("not a handle: {0:?} (expected '@' followed by 3 to 30 letters, digits, '_', '.' or '-')")]
    Handle(String),
    #[error("not an email address: {0:?}")]
    Email(String),
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

string_id!(
    /// A YouTube video id: 11 characters of `[A-Za-z0-9_-]`.
    VideoId
);
string_id!(
    /// A YouTube channel id: `UC` followed by 22 characters of `[A-Za-z0-9_-]`.
    ChannelId
);
string_id!(
    /// A YouTube handle, kept with its `@` and lower-cased (handles are case-insensitive).
    Handle
);
string_id!(
    /// An email address, trimmed and with a lower-cased domain.
    Email
);

impl VideoId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() == 11 && s.chars().all(is_id_char) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Video(s.to_owned()))
        }
    }
}

impl ChannelId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() == 24 && s.starts_with("UC") && s.chars().all(is_id_char) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Channel(s.to_owned()))
        }
    }

    /// The id of the channel's uploads playlist (`UU…`).
    pub fn uploads_playlist(&self) -> String {
        format!("UU{}", &self.0[2..])
    }
}

impl Handle {
    /// Accepts `@name` or `name`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let name = s.strip_prefix('@').unwrap_or(s);
        let ok = (3..=30).contains(&name.chars().count())
            && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok { Ok(Self(format!("@{}", name.to_lowercase()))) } else { Err(IdError::Handle(s.to_owned())) }
    }
}

impl Email {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let trimmed = s.trim();
        let err = || IdError::Email(s.to_owned());
        if trimmed.len() > 254 || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err());
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or_else(err)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(err());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }
}

/// A tubewatch user's id: the store assigns it (its row id), and `new` wraps one read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(i64);

impl UserId {
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    /// The row id, for storing and for keys derived from it.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_ids() {
        assert_eq!(VideoId::parse("dQw4w9WgXcQ").unwrap().as_str(), "dQw4w9WgXcQ");
        assert!(VideoId::parse("zg40FHOAqC0").is_ok());
        for bad in ["", "dQw4w9WgXc", "dQw4w9WgXcQQ", "dQw4w9WgX Q", "dQw4w9WgX/Q", "dQw4w9WgXé"] {
            let err = VideoId::parse(bad).unwrap_err();
            assert!(err.to_string().contains("not a video id"), "{bad}: {err}");
        }
    }

    #[test]
    fn channel_ids() {
        let id = ChannelId::parse("UCsXVk37bltHxD1rDPwtNM8Q").unwrap();
        assert_eq!(id.uploads_playlist(), "UUsXVk37bltHxD1rDPwtNM8Q");
        for bad in [
            "sXVk37bltHxD1rDPwtNM8Q",
            "UCsXVk37bltHxD1rDPwtNM8",
            "UUsXVk37bltHxD1rDPwtNM8Q",
            "UCsXVk37bltHxD1rDPwtNM8!",
        ] {
            assert!(matches!(ChannelId::parse(bad), Err(IdError::Channel(_))), "{bad}");
        }
    }

    #[test]
    fn handles_are_normalised() {
        assert_eq!(Handle::parse("@Kurzgesagt").unwrap().as_str(), "@kurzgesagt");
        assert_eq!(Handle::parse("mr.beast-6000").unwrap().as_str(), "@mr.beast-6000");
        for bad in ["@ab", "@", "@has space", "@way_too_long_handle_that_exceeds_30"] {
            assert!(Handle::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "Ann@example.com");
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@exa..mple.com",
            "ann@.example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_validates() {
        let ok: VideoId = serde_json_like("dQw4w9WgXcQ").unwrap();
        assert_eq!(ok.as_str(), "dQw4w9WgXcQ");
        assert!(serde_json_like::<VideoId>("nope").is_err());
    }

    fn serde_json_like<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, String> {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StringDeserializer};
        let de: StringDeserializer<Error> = s.to_owned().into_deserializer();
        T::deserialize(de).map_err(|e| e.to_string())
    }
}
