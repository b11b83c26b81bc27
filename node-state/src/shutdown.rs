//! `graceful_node_shutdown_state`: start and end of the last graceful node shutdown.
//!
//! `{"startTime":"<RFC3339Nano>","endTime":"<RFC3339Nano>"}`, no checksum. A missing file
//! reads as the zero state. The kubelet writes it with mode 0644; this crate writes 0600 like
//! every other state file (it is only read by root-run tooling).

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::gojson::{self, Cx, get};
use crate::gotime::GoTime;
use crate::store::{FILE_MODE, StateFile, write_atomic};

/// File name under the kubelet root directory.
pub const GRACEFUL_NODE_SHUTDOWN_STATE_FILE: &str = "graceful_node_shutdown_state";

/// The content of `graceful_node_shutdown_state`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GracefulShutdownState {
    /// When the shutdown began.
    #[serde(rename = "startTime")]
    pub start_time: GoTime,
    /// When it finished.
    #[serde(rename = "endTime")]
    pub end_time: GoTime,
}

impl GracefulShutdownState {
    /// Reads the file; a missing file is the zero state, as in the kubelet.
    pub fn load(path: &Path) -> Result<Self> {
        match crate::store::read_state_file(path) {
            Ok(bytes) => Self::decode(&bytes, path),
            Err(Error::NotFound { .. }) => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes the file atomically.
    pub fn store(&self, path: &Path) -> Result<()> {
        let (dir, name) = split(path)?;
        write_atomic(dir, name, &self.encode()?, FILE_MODE)
    }
}

fn split(path: &Path) -> Result<(&Path, &str)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Encode {
            what: "graceful_node_shutdown_state",
            message: format!("{} has no file name", path.display()),
        })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((dir, name))
}

impl StateFile for GracefulShutdownState {
    fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let cx = Cx::new(path);
        let root = cx.parse(bytes)?;
        let empty = serde_json::Map::new();
        let obj = cx.root(&root)?.unwrap_or(&empty);
        let time = |name: &str| -> Result<GoTime> {
            match get(obj, name) {
                None | Some(serde_json::Value::Null) => Ok(GoTime::ZERO),
                Some(v) => {
                    let s = cx.string(v, name)?;
                    GoTime::parse_rfc3339(&s)
                        .ok_or_else(|| cx.err(name, format!("{s:?} is not an RFC 3339 time")))
                }
            }
        };
        Ok(GracefulShutdownState {
            start_time: time("startTime")?,
            end_time: time("endTime")?,
        })
    }

    fn encode(&self) -> Result<Vec<u8>> {
        gojson::to_vec(self, "graceful_node_shutdown_state")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GRACEFUL_NODE_SHUTDOWN_STATE_FILE);
        assert_eq!(
            GracefulShutdownState::load(&path).unwrap(),
            GracefulShutdownState::default()
        );
        let s = GracefulShutdownState {
            start_time: GoTime::parse_rfc3339("2024-05-01T10:00:00.25+02:00").unwrap(),
            end_time: GoTime::ZERO,
        };
        s.store(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"startTime":"2024-05-01T10:00:00.25+02:00","endTime":"0001-01-01T00:00:00Z"}"#
        );
        let back = GracefulShutdownState::load(&path).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.end_time.timestamp(), 0);
        assert_eq!(back.start_time.timestamp(), 1_714_550_400);
    }

    #[test]
    fn bad_time_names_field() {
        let err = GracefulShutdownState::decode(br#"{"startTime":"yesterday"}"#, Path::new("f"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"f: field startTime: "yesterday" is not an RFC 3339 time"#
        );
    }
}
