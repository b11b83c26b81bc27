//! JSON the way Go's `encoding/json` reads and writes it.
//!
//! Reading: object keys match struct fields case-insensitively (the last matching key wins),
//! unknown keys are ignored, `null` leaves the Go zero value (a nil map, slice or pointer), and
//! numbers must be integers in range for the field. [`Cx`] walks a `serde_json::Value` with
//! those rules and names the file and field in every error.
//!
//! Writing: [`to_vec`] escapes `<`, `>`, `&`, U+2028 and U+2029 as Go does, so strings that
//! are checksummed byte-for-byte (DRA and allocation `data`) come out identical to the
//! kubelet's.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Decoding context: the file being read, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cx<'p> {
    pub path: &'p Path,
}

/// Joins a field path: `join("entries", "pod")` is `entries.pod`.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() || parent == "$" {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Go's case-insensitive key match for an ASCII field name (`encoding/json` folds keys with
/// `bytes.EqualFold`; the Kelvin sign and long s fold to `k` and `s`).
fn key_matches(key: &str, field: &str) -> bool {
    let mut fc = field.chars();
    for k in key.chars() {
        let Some(f) = fc.next() else { return false };
        let ok = if k.is_ascii() {
            k.eq_ignore_ascii_case(&f)
        } else {
            (k == '\u{212A}' && f.eq_ignore_ascii_case(&'k'))
                || (k == '\u{017F}' && f.eq_ignore_ascii_case(&'s'))
        };
        if !ok {
            return false;
        }
    }
    fc.next().is_none()
}

impl<'p> Cx<'p> {
    pub fn new(path: &'p Path) -> Self {
        Cx { path }
    }

    pub fn err(&self, field: &str, message: impl Into<String>) -> Error {
        Error::Decode {
            path: self.path.to_path_buf(),
            field: if field.is_empty() {
                "$".to_owned()
            } else {
                field.to_owned()
            },
            message: message.into(),
        }
    }

    fn expected(&self, field: &str, what: &str, got: &Value) -> Error {
        self.err(field, format!("expected {what}, found {}", describe(got)))
    }

    /// Parses the file's bytes as JSON.
    pub fn parse(&self, bytes: &[u8]) -> Result<Value> {
        serde_json::from_slice(bytes).map_err(|source| Error::Json {
            path: self.path.to_path_buf(),
            source,
        })
    }

    /// Parses a JSON document held in a string field (DRA and allocation `data`).
    pub fn parse_embedded(&self, field: &str, text: &str) -> Result<Value> {
        serde_json::from_str(text)
            .map_err(|e| self.err(field, format!("invalid embedded JSON: {e}")))
    }

    /// The value as an object; `None` for `null` (Go leaves the struct untouched).
    pub fn object<'v>(&self, v: &'v Value, field: &str) -> Result<Option<&'v Map<String, Value>>> {
        match v {
            Value::Null => Ok(None),
            Value::Object(m) => Ok(Some(m)),
            other => Err(self.expected(field, "an object", other)),
        }
    }

    /// The document root, which must be an object (or `null`, an empty document to Go).
    pub fn root<'v>(&self, v: &'v Value) -> Result<Option<&'v Map<String, Value>>> {
        self.object(v, "$")
    }

    pub fn string(&self, v: &Value, field: &str) -> Result<String> {
        match v {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s.clone()),
            other => Err(self.expected(field, "a string", other)),
        }
    }

    pub fn u64(&self, v: &Value, field: &str) -> Result<u64> {
        match v {
            Value::Null => Ok(0),
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| self.err(field, format!("expected an unsigned integer, found {n}"))),
            other => Err(self.expected(field, "an unsigned integer", other)),
        }
    }

    pub fn u32(&self, v: &Value, field: &str) -> Result<u32> {
        let n = self.u64(v, field)?;
        u32::try_from(n).map_err(|_| self.err(field, format!("{n} overflows uint32")))
    }

    pub fn i64(&self, v: &Value, field: &str) -> Result<i64> {
        match v {
            Value::Null => Ok(0),
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| self.err(field, format!("expected an integer, found {n}"))),
            other => Err(self.expected(field, "an integer", other)),
        }
    }

    /// A Go map with string keys: `null` is a nil map (`None`).
    pub fn map<V>(
        &self,
        v: &Value,
        field: &str,
        mut value: impl FnMut(&Value, &str) -> Result<V>,
    ) -> Result<Option<BTreeMap<String, V>>> {
        match v {
            Value::Null => Ok(None),
            Value::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, item) in m {
                    let f = join(field, k);
                    out.insert(k.clone(), value(item, &f)?);
                }
                Ok(Some(out))
            }
            other => Err(self.expected(field, "an object", other)),
        }
    }

    /// A Go map with integer keys (`map[int]...`, `map[int64]...`): keys are decimal strings.
    pub fn int_map<V>(
        &self,
        v: &Value,
        field: &str,
        mut value: impl FnMut(&Value, &str) -> Result<V>,
    ) -> Result<Option<BTreeMap<i64, V>>> {
        match v {
            Value::Null => Ok(None),
            Value::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, item) in m {
                    let f = join(field, k);
                    let key = parse_go_int(k).ok_or_else(|| {
                        self.err(&f, format!("map key {k:?} is not a decimal integer"))
                    })?;
                    out.insert(key, value(item, &f)?);
                }
                Ok(Some(out))
            }
            other => Err(self.expected(field, "an object", other)),
        }
    }

    /// A Go slice: `null` is a nil slice (`None`).
    pub fn slice<T>(
        &self,
        v: &Value,
        field: &str,
        mut item: impl FnMut(&Value, &str) -> Result<T>,
    ) -> Result<Option<Vec<T>>> {
        match v {
            Value::Null => Ok(None),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, x)| item(x, &format!("{field}[{i}]")))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            other => Err(self.expected(field, "an array", other)),
        }
    }

    /// A `[]byte`, base64 (standard alphabet, padded) in JSON as Go writes it.
    pub fn bytes(&self, v: &Value, field: &str) -> Result<Option<Vec<u8>>> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => decode_go_base64(s)
                .map(Some)
                .ok_or_else(|| self.err(field, "invalid base64 data")),
            other => Err(self.expected(field, "a base64 string", other)),
        }
    }
}

/// Looks a struct field up the way Go's decoder does: case-insensitively, last key wins.
pub(crate) fn get<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.iter()
        .filter(|(k, _)| key_matches(k, name))
        .map(|(_, v)| v)
        .next_back()
}

/// `strconv.ParseInt(s, 10, 64)`: optional sign, ASCII digits, in range.
pub(crate) fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut acc: i128 = 0;
    for b in digits.bytes() {
        acc = acc * 10 + i128::from(b - b'0');
        if acc > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let v = if neg { -acc } else { acc };
    i64::try_from(v).ok()
}

fn decode_go_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
    // Go's StdEncoding ignores CR/LF, requires padding and tolerates non-zero trailing bits.
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    ENGINE.decode(cleaned.as_bytes()).ok()
}

/// Go's base64 encoding of a `[]byte` field.
pub(crate) fn encode_go_base64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A serde_json formatter producing Go's `encoding/json` escaping.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc: Option<&[u8]> = match c {
                '<' => Some(b"\\u003c"),
                '>' => Some(b"\\u003e"),
                '&' => Some(b"\\u0026"),
                '\u{2028}' => Some(b"\\u2028"),
                '\u{2029}' => Some(b"\\u2029"),
                _ => None,
            };
            if let Some(esc) = esc {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                writer.write_all(esc)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serializes `value` compactly with Go's escaping.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser).map_err(|e| Error::Encode {
        what,
        message: e.to_string(),
    })?;
    Ok(out)
}

/// Serializes to a `String` (the JSON is always UTF-8).
pub(crate) fn to_string<T: Serialize + ?Sized>(value: &T, what: &'static str) -> Result<String> {
    let bytes = to_vec(value, what)?;
    String::from_utf8(bytes).map_err(|e| Error::Encode {
        what,
        message: e.to_string(),
    })
}

/// serde helpers for Go's `omitempty` and for int-keyed maps, which Go writes with keys sorted
/// as strings.
pub(crate) mod ser {
    use std::collections::BTreeMap;

    use serde::Serializer;
    use serde::ser::SerializeMap;

    pub fn is_empty_map<K, V>(m: &Option<BTreeMap<K, V>>) -> bool {
        m.as_ref().is_none_or(BTreeMap::is_empty)
    }

    pub fn is_empty_vec<T>(v: &Option<Vec<T>>) -> bool {
        v.as_ref().is_none_or(Vec::is_empty)
    }

    /// `map[int]V` / `map[int64]V`: Go converts keys to decimal strings and sorts those.
    pub fn int_keyed<S: Serializer, V: serde::Serialize>(
        m: &Option<BTreeMap<i64, V>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match m {
            None => s.serialize_none(),
            Some(m) => {
                let sorted: BTreeMap<String, &V> =
                    m.iter().map(|(k, v)| (k.to_string(), v)).collect();
                let mut map = s.serialize_map(Some(sorted.len()))?;
                for (k, v) in sorted {
                    map.serialize_entry(&k, v)?;
                }
                map.end()
            }
        }
    }

    /// `[]byte` as base64 (`null` when nil).
    pub fn go_bytes<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            None => s.serialize_none(),
            Some(b) => s.serialize_str(&super::encode_go_base64(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_case_insensitively_last_wins() {
        let v: Value =
            serde_json::from_str(r#"{"defaultCPUSet":"1","DEFAULTCPUSET":"2"}"#).unwrap();
        let m = v.as_object().unwrap();
        assert_eq!(get(m, "defaultCpuSet"), Some(&Value::String("2".into())));
        assert!(key_matches("\u{212A}ind", "kind"));
        assert!(!key_matches("kin", "kind"));
        assert!(!key_matches("kinds", "kind"));
    }

    #[test]
    fn go_escaping() {
        let s = to_string("<a&b>\u{2028}\n\"", "test").unwrap();
        assert_eq!(s, r#""\u003ca\u0026b\u003e\u2028\n\"""#);
    }

    #[test]
    fn go_int_parsing() {
        assert_eq!(parse_go_int("-1"), Some(-1));
        assert_eq!(parse_go_int("+7"), Some(7));
        assert_eq!(parse_go_int("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_go_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_go_int("9223372036854775808"), None);
        assert_eq!(parse_go_int(""), None);
        assert_eq!(parse_go_int("1.3"), None);
        assert_eq!(parse_go_int("-"), None);
    }

    #[test]
    fn base64_like_go() {
        assert_eq!(decode_go_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_go_base64("aG\nk=").unwrap(), b"hi");
        assert!(decode_go_base64("aGk").is_none());
    }
}
