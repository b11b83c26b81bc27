//! Decoding one `KubeletConfiguration` document (YAML or JSON) the way the kubelet does:
//! strict first; on unknown fields, lenient with every ignored key returned as a warning.
//! Duplicate keys, wrong types and a wrong `apiVersion`/`kind` are errors naming the file, the
//! line and the field path.

use std::path::Path;

use serde_json::Value;

use crate::error::{ConfigError, Position};
use crate::types::{API_VERSION, KIND, KubeletConfiguration};

/// What to do with fields the v1beta1 type does not have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strictness {
    /// The kubelet's behaviour for v1beta1: ignore them and report each as a warning.
    #[default]
    LenientWithWarnings,
    /// Reject the file, naming every unknown field.
    Strict,
}

/// One decoded document.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// The keys exactly as written (the JSON form the merge patch works on).
    pub(crate) json: Value,
    /// Unknown fields, as dotted JSON paths.
    pub(crate) unknown_fields: Vec<String>,
}

fn yaml_options() -> serde_saphyr::Options {
    // Duplicate keys are an error by default (like the kubelet's strict decoder), and the
    // parser's default budget bounds hostile input (alias bombs, deep nesting).
    serde_saphyr::Options::default()
}

fn position(err: &serde_saphyr::Error) -> Option<Position> {
    err.location().map(|l| Position {
        line: l.line(),
        column: l.column(),
    })
}

/// The parser's message without the source snippet it may append, on one line.
fn one_line(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    // serde-saphyr prefixes messages with "error: " in its rendered form.
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// Decodes `text` read from `path`.
pub(crate) fn decode_document(
    path: &Path,
    text: &str,
    strictness: Strictness,
) -> Result<Document, ConfigError> {
    let path_buf = path.to_path_buf();
    if is_blank(text) {
        return Err(ConfigError::Empty { path: path_buf });
    }
    let json: Value = serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        ConfigError::Syntax {
            path: path_buf.clone(),
            position: position(&e),
            message: one_line(&e),
        }
    })?;
    let Value::Object(map) = &json else {
        if json.is_null() {
            return Err(ConfigError::Empty { path: path_buf });
        }
        return Err(ConfigError::NotAnObject {
            path: path_buf,
            found: json_type(&json),
        });
    };
    check_type_meta(path, map)?;

    let mut unknown_fields = Vec::new();
    let mut field_path = String::new();
    // The typed decode only checks types and finds unknown fields; the merge works on `json`.
    let _typed: KubeletConfiguration =
        serde_saphyr::with_deserializer_from_str_with_options(text, yaml_options(), |de| {
            let mut record = |p: serde_ignored::Path<'_>| unknown_fields.push(dotted(&p));
            let ignored = serde_ignored::Deserializer::new(de, &mut record);
            serde_path_to_error::deserialize(ignored).map_err(|e| {
                field_path = e.path().to_string();
                e.into_inner()
            })
        })
        .map_err(|e| ConfigError::Field {
            path: path_buf.clone(),
            position: position(&e),
            field: field_path.clone(),
            message: one_line(&e),
        })?;
    if strictness == Strictness::Strict && !unknown_fields.is_empty() {
        return Err(ConfigError::UnknownFields {
            path: path_buf,
            fields: unknown_fields,
        });
    }
    Ok(Document {
        json,
        unknown_fields,
    })
}

/// `a.b[2].c` for an ignored key, leaving out the `Option`/newtype layers that serde_ignored
/// shows as `?`.
fn dotted(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", dotted(parent)),
        Path::Map { parent, key } => {
            let head = dotted(parent);
            if head.is_empty() {
                key.clone()
            } else {
                format!("{head}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => dotted(parent),
    }
}

/// Whether the text has no YAML content: only whitespace and comments.
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn check_type_meta(path: &Path, map: &serde_json::Map<String, Value>) -> Result<(), ConfigError> {
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(ConfigError::MissingTypeMeta {
            path: path.to_path_buf(),
        });
    }
    if api_version != API_VERSION || kind != KIND {
        return Err(ConfigError::WrongTypeMeta {
            path: path.to_path_buf(),
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        });
    }
    Ok(())
}

/// Decodes a JSON value (the merged form) into the typed configuration, ignoring unknown keys
/// (they were reported when each file was decoded).
pub(crate) fn from_merged(json: Value) -> Result<KubeletConfiguration, ConfigError> {
    serde_path_to_error::deserialize(json).map_err(|e| ConfigError::Merged {
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

    fn decode(body: &str) -> Result<Document, ConfigError> {
        decode_document(
            Path::new("/etc/kubelet.yaml"),
            &format!("{HEAD}{body}"),
            Strictness::LenientWithWarnings,
        )
    }

    #[test]
    fn type_error_names_line_and_field() {
        let err =
            decode("port: 10250\nauthentication:\n  webhook:\n    cacheTTL: soon\n").unwrap_err();
        match &err {
            ConfigError::Field {
                field, position, ..
            } => {
                assert_eq!(field, "authentication.webhook.cacheTTL");
                assert_eq!(position.unwrap().line, 6);
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(text.starts_with("/etc/kubelet.yaml:6:"), "{text}");
        assert!(text.contains("authentication.webhook.cacheTTL"), "{text}");
    }

    #[test]
    fn wrong_scalar_type() {
        let err = decode("port: \"high\"\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Field { field, .. } if field == "port"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = decode("port: 1\nport: 2\n").unwrap_err();
        match err {
            ConfigError::Syntax {
                position, message, ..
            } => {
                assert_eq!(position.unwrap().line, 4, "{message}");
                assert!(message.to_lowercase().contains("duplicate"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_fields_lenient_and_strict() {
        let body = "port: 1\nbogusField: 3\nauthentication:\n  webhook:\n    extra: true\n";
        let doc = decode(body).unwrap();
        assert_eq!(
            doc.unknown_fields,
            ["bogusField", "authentication.webhook.extra"]
        );
        assert_eq!(doc.json["port"], 1);
        let err = decode_document(Path::new("f"), &format!("{HEAD}{body}"), Strictness::Strict)
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::UnknownFields { ref fields, .. } if fields.len() == 2),
            "{err}"
        );
    }

    #[test]
    fn type_meta() {
        let err = decode_document(Path::new("f"), "port: 1\n", Strictness::Strict).unwrap_err();
        assert!(matches!(err, ConfigError::MissingTypeMeta { .. }));
        let err = decode_document(
            Path::new("f"),
            "apiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n",
            Strictness::Strict,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown apiVersion/kind: kubelet.config.k8s.io/v1"),
            "{err}"
        );
    }

    #[test]
    fn empty_and_comment_only_files() {
        for text in ["", "  \n\n", "# nothing\n", "---\n"] {
            let err = decode_document(Path::new("e.conf"), text, Strictness::Strict).unwrap_err();
            assert_eq!(err.to_string(), "kubelet config file \"e.conf\" was empty");
        }
    }

    #[test]
    fn json_documents_decode_too() {
        let doc = decode_document(
            Path::new("k.json"),
            r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","port":1}"#,
            Strictness::Strict,
        )
        .unwrap();
        assert_eq!(doc.json["port"], 1);
    }
}
