//! Shared plumbing for the `node-*` crates, in one place instead of a copy per crate.
//!
//! - [`error_chain`]: an error and its causes on one line, outermost first (`a: b: c`), the way
//!   the kubelet's Go errors read when wrapped with `%w`. Every crate's error type keeps its
//!   cause in [`std::error::Error::source`] and does not print it in its own message, so this
//!   plain walk prints each cause once.
//! - [`text`] (feature `http`): a `200`/`4xx`/`5xx` `text/plain; charset=utf-8` response, the
//!   body type Go's `http.Error` writes.
//!
//! The other shared helpers live with the crate whose subject they are: durable atomic writes
//! in `node_state::write_atomic` (temp file, fsync, rename, fsync of the directory), reads of
//! the host's `/proc`, `/sys` and `/etc` through `node_kernel::HostRoot`.
//!
//! ```
//! #[derive(Debug)]
//! struct Outer(std::io::Error);
//! impl std::fmt::Display for Outer {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("reading /var/lib/kubelet/cpu_manager_state")
//!     }
//! }
//! impl std::error::Error for Outer {
//!     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
//!         Some(&self.0)
//!     }
//! }
//!
//! let e = Outer(std::io::Error::other("permission denied"));
//! assert_eq!(
//!     node_util::error_chain(&e),
//!     "reading /var/lib/kubelet/cpu_manager_state: permission denied"
//! );
//! ```

#![deny(missing_docs)]

/// `err` and each of its [`source`](std::error::Error::source)s, `": "`-separated, outermost
/// first: the one-line form for logs, gRPC status messages and HTTP bodies.
///
/// The error types of the `node-*` crates never print their cause in their own message. Some
/// third-party errors do (`tonic::Status` appends its source, several `kube` errors format it
/// in), and their text cannot be changed here: a cause whose text the line already holds is
/// not repeated.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A plain-text response with `status` and `body` (`Content-Type: text/plain; charset=utf-8`).
#[cfg(feature = "http")]
pub fn text(status: http::StatusCode, body: impl Into<String>) -> http::Response<String> {
    let mut response = http::Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrap(&'static str, Option<Box<Wrap>>);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|w| w as _)
        }
    }

    #[test]
    fn chain_prints_every_cause_once_outermost_first() {
        let e = Wrap(
            "a",
            Some(Box::new(Wrap("b", Some(Box::new(Wrap("c", None)))))),
        );
        assert_eq!(error_chain(&e), "a: b: c");
        assert_eq!(error_chain(&Wrap("alone", None)), "alone");
    }

    #[test]
    fn a_cause_the_message_already_prints_is_not_repeated() {
        // A third-party error that formats its source into its own message.
        let e = Wrap("connect: refused", Some(Box::new(Wrap("refused", None))));
        assert_eq!(error_chain(&e), "connect: refused");
    }

    #[cfg(feature = "http")]
    #[test]
    fn text_sets_status_type_and_body() {
        let r = text(http::StatusCode::NOT_FOUND, "pod does not exist");
        assert_eq!(r.status(), http::StatusCode::NOT_FOUND);
        assert_eq!(
            r.headers()[http::header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(r.body(), "pod does not exist");
    }
}
