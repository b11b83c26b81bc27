//! A small strict walker over `serde_json::Value` that reports errors with JSON paths.
//!
//! The profile parsers use it instead of derived `Deserialize` so that every error names the
//! exact field (`$.syscalls[3].args[0].op`) and can carry the runtimes' own wording.

use serde_json::{Map, Value};

use crate::error::Error;

/// Parsing context: where the document came from.
pub(crate) struct Ctx<'a> {
    pub(crate) origin: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn err(&self, path: &str, message: impl Into<String>) -> Error {
        Error::Field {
            origin: self.origin.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Parses a JSON document (bytes that are not UTF-8 are a JSON error naming the position).
    pub(crate) fn parse(&self, bytes: &[u8]) -> Result<Value, Error> {
        serde_json::from_slice(bytes).map_err(|source| Error::Json {
            origin: self.origin.to_string(),
            source,
        })
    }

    pub(crate) fn object<'v>(
        &self,
        v: &'v Value,
        path: &str,
    ) -> Result<&'v Map<String, Value>, Error> {
        v.as_object()
            .ok_or_else(|| self.err(path, format!("expected an object, found {}", kind(v))))
    }

    pub(crate) fn array<'v>(&self, v: &'v Value, path: &str) -> Result<&'v Vec<Value>, Error> {
        v.as_array()
            .ok_or_else(|| self.err(path, format!("expected an array, found {}", kind(v))))
    }

    pub(crate) fn string<'v>(&self, v: &'v Value, path: &str) -> Result<&'v str, Error> {
        v.as_str()
            .ok_or_else(|| self.err(path, format!("expected a string, found {}", kind(v))))
    }

    pub(crate) fn u64(&self, v: &Value, path: &str) -> Result<u64, Error> {
        v.as_u64().ok_or_else(|| {
            self.err(
                path,
                format!("expected an unsigned 64-bit integer, found {}", show(v)),
            )
        })
    }

    pub(crate) fn u32(&self, v: &Value, path: &str) -> Result<u32, Error> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                self.err(
                    path,
                    format!("expected an unsigned 32-bit integer, found {}", show(v)),
                )
            })
    }

    pub(crate) fn strings(&self, v: &Value, path: &str) -> Result<Vec<String>, Error> {
        self.array(v, path)?
            .iter()
            .enumerate()
            .map(|(i, s)| self.string(s, &format!("{path}[{i}]")).map(str::to_string))
            .collect()
    }

    /// Rejects keys outside `known`; keys in `docker` get the pointer to the Docker loader.
    pub(crate) fn check_keys(
        &self,
        map: &Map<String, Value>,
        path: &str,
        known: &[&str],
        docker: &[&str],
    ) -> Result<(), Error> {
        for key in map.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let field = format!("{path}.{key}");
            if docker.contains(&key.as_str()) {
                return Err(Error::DockerFormat {
                    origin: self.origin.to_string(),
                    path: field,
                    key: key.clone(),
                });
            }
            return Err(self.err(
                &field,
                format!(
                    "unknown field `{key}`, expected one of: {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

/// A field that may be absent or `null` (Go's omitempty pointers serialise as either).
pub(crate) fn opt<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => kind(other).to_string(),
    }
}
