//! Google's partial responses: a `$fields` mask (`a.b,c(d,e)`, as in the recorded
//! `player_web_fields_mock.json`) keeps only the named fields of a JSON response. A path through
//! an array applies to each of its elements; a named field that is absent is left out.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A parsed mask: for each kept key, either the whole value (no children) or a sub-mask.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldMask {
    keys: BTreeMap<String, FieldMask>,
}

impl FieldMask {
    /// Parses `a.b,c(d,e.f),g`. Errors name what is wrong, as Google's 400 does.
    pub fn parse(mask: &str) -> Result<Self, String> {
        let mut root = FieldMask::default();
        let rest = parse_list(mask.trim(), &mut root)?;
        if !rest.is_empty() {
            return Err(format!("Invalid FieldMask '{mask}': unexpected '{rest}'"));
        }
        Ok(root)
    }

    fn is_whole(&self) -> bool {
        self.keys.is_empty()
    }

    /// The value with only the masked fields kept.
    pub fn apply(&self, value: &Value) -> Value {
        if self.is_whole() {
            return value.clone();
        }
        match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, sub) in &self.keys {
                    if let Some(v) = map.get(key) {
                        out.insert(key.clone(), sub.apply(v));
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.apply(v)).collect()),
            other => other.clone(),
        }
    }
}

/// Parses comma-separated items into `into`; returns what follows the list (`)` or nothing).
fn parse_list<'a>(mut s: &'a str, into: &mut FieldMask) -> Result<&'a str, String> {
    loop {
        let end = s.find([',', '(', ')']).unwrap_or(s.len());
        let path = s[..end].trim();
        if path.is_empty() || path.split('.').any(|p| p.is_empty()) {
            return Err(format!("Invalid FieldMask: empty field name near '{s}'"));
        }
        // Walk (creating) the dotted path; a path named whole again stays whole.
        let mut node = &mut *into;
        for part in path.split('.') {
            node = node.keys.entry(part.to_owned()).or_default();
        }
        s = &s[end..];
        if let Some(inner) = s.strip_prefix('(') {
            let rest = parse_list(inner, node)?;
            s = rest.strip_prefix(')').ok_or_else(|| "Invalid FieldMask: unclosed '('".to_owned())?;
        }
        match s.strip_prefix(',') {
            Some(rest) => s = rest,
            None => return Ok(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_dotted_and_parenthesised_fields_only() {
        let player = json!({
            "responseContext": {"visitorData": "x"},
            "playabilityStatus": {"status": "OK", "miniplayer": {}},
            "videoDetails": {"videoId": "abc", "title": "t", "viewCount": "12", "keywords": ["k"],
                "thumbnail": {"thumbnails": [{"url": "u", "width": 1}, {"url": "v", "width": 2}]}},
            "microformat": {"playerMicroformatRenderer": {"viewCount": "12", "title": {"simpleText": "t"}}}
        });
        let mask = FieldMask::parse(
            "playabilityStatus.status,videoDetails(videoId,viewCount,thumbnail.thumbnails.url),microformat",
        )
        .expect("valid mask");
        assert_eq!(
            mask.apply(&player),
            json!({
                "playabilityStatus": {"status": "OK"},
                "videoDetails": {"videoId": "abc", "viewCount": "12",
                    "thumbnail": {"thumbnails": [{"url": "u"}, {"url": "v"}]}},
                "microformat": {"playerMicroformatRenderer": {"viewCount": "12", "title": {"simpleText": "t"}}}
            })
        );
        // Fields that are absent (an error response has no videoDetails) are left out.
        let error = json!({"playabilityStatus": {"status": "ERROR", "reason": "gone"}});
        assert_eq!(mask.apply(&error), json!({"playabilityStatus": {"status": "ERROR"}}));
    }

    #[test]
    fn refuses_malformed_masks() {
        for bad in ["", "a,,b", "a.(b)", "a(b", "a)b", "a..b"] {
            assert!(FieldMask::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
