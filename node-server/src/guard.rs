//! What stands between a request and the routes.
//!
//! * [`CatchPanic`]: a panic in a handler (or in anything it calls, e.g. a client library)
//!   is caught, logged and answered `500 Internal Server Error`; the panic message is never
//!   sent, and the server keeps serving every other request and connection.
//! * [`BodyLimit`]: a request declaring a body larger than the cap is refused with 413 before
//!   any handler runs, and a handler that reads the body never gets more than the cap (an
//!   extractor answers 413 too).
//! * [`crate::secured`] (in the filter module): the kubelet's order on the secured port: catch
//!   panics, then authenticate and authorize **every** request (any method, any path, known or
//!   not), then cap the body, then route. An unauthenticated request therefore always gets 401,
//!   never a 404 or 405 that would tell it which paths exist.
//! * [`guarded`]: the same without authentication, for the plain healthz port.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::{Method, Request, StatusCode};
use hyper::body::Frame;

/// The most request body bytes a handler can read (1 MiB); a request that declares more is
/// refused with 413. No kubelet route this server carries reads a body at all.
pub const MAX_REQUEST_BODY_BYTES: usize = 1 << 20;
/// The body of a 404 for a path no route serves (Go's `http.NotFound`).
pub const PAGE_NOT_FOUND: &str = "404 page not found";
/// The body of the 500 a panicking handler is answered with.
pub const INTERNAL_SERVER_ERROR: &str = "Internal Server Error";
/// Longest request path written to a log line (longer ones are cut, marked `...`).
const LOGGED_PATH_MAX: usize = 256;

/// A `text/plain; charset=utf-8` response, as Go's `http.Error` writes it.
pub fn text_response(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// A fallback answering like Go's `http.NotFound` (`404 page not found`).
pub async fn page_not_found() -> Response {
    text_response(StatusCode::NOT_FOUND, PAGE_NOT_FOUND)
}

/// `path` cut to a length fit for a log line.
pub(crate) fn loggable_path(path: &str) -> String {
    if path.len() <= LOGGED_PATH_MAX {
        return path.to_owned();
    }
    let mut end = LOGGED_PATH_MAX;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end])
}

/// A port without authentication (the kubelet's healthz port) in front of `routes`:
/// [`CatchPanic`], then [`BodyLimit`], then `routes`.
pub fn guarded(routes: Router) -> Router {
    Router::new().fallback_service(CatchPanic::new(BodyLimit::new(routes)))
}

/// A [`tower::Layer`] adding [`CatchPanic`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> tower::Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic::new(inner)
    }
}

/// A service whose panics (while building the response future, polling it or streaming the
/// response body) are caught: before the response head is sent the answer is
/// `500 Internal Server Error` (plain text, no panic message); during the body the stream ends
/// with an error, so the client sees a truncated response. Every panic is logged with the
/// method and path.
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

impl<S> CatchPanic<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

fn internal_error() -> Response {
    text_response(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_SERVER_ERROR)
}

/// Drops `value`, swallowing a panic from its destructor (a future that panicked once may
/// panic again while it is torn down).
fn drop_quietly<T>(value: T) {
    if catch_unwind(AssertUnwindSafe(move || drop(value))).is_err() {
        tracing::error!("a request handler panicked again while being dropped");
    }
}

impl<S, B> tower::Service<Request<B>> for CatchPanic<S>
where
    S: tower::Service<Request<B>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CatchPanicFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match catch_unwind(AssertUnwindSafe(|| self.inner.poll_ready(cx))) {
            Ok(ready) => ready,
            Err(payload) => {
                tracing::error!(panic = panic_message(&*payload), "request service panicked");
                // call() catches the next panic too and answers 500.
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = req.method().clone();
        let path = loggable_path(req.uri().path());
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => CatchPanicFuture {
                state: State::Running {
                    future: Box::pin(future),
                    method,
                    path,
                },
            },
            Err(payload) => {
                log_panic(&method, &path, &*payload);
                drop_quietly(payload);
                CatchPanicFuture {
                    state: State::Done(Some(internal_error())),
                }
            }
        }
    }
}

fn log_panic(method: &Method, path: &str, payload: &(dyn Any + Send)) {
    tracing::error!(
        %method,
        path,
        panic = panic_message(payload),
        "request handler panicked; answered 500 Internal Server Error"
    );
}

/// The future of [`CatchPanic`].
pub struct CatchPanicFuture<F> {
    state: State<F>,
}

enum State<F> {
    Running {
        future: Pin<Box<F>>,
        method: Method,
        path: String,
    },
    Done(Option<Response>),
}

impl<F> std::fmt::Debug for CatchPanicFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatchPanicFuture").finish_non_exhaustive()
    }
}

impl<F> Future for CatchPanicFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (future, method, path) = match &mut this.state {
            State::Done(response) => {
                return Poll::Ready(Ok(response.take().unwrap_or_else(internal_error)));
            }
            State::Running {
                future,
                method,
                path,
            } => (future, method, path),
        };
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(response))) => {
                let (method, path) = (method.clone(), std::mem::take(path));
                drop_quietly(std::mem::replace(&mut this.state, State::Done(None)));
                Poll::Ready(Ok(response.map(|body| {
                    Body::new(CatchPanicBody {
                        inner: Some(body),
                        method,
                        path,
                    })
                })))
            }
            Ok(Poll::Ready(Err(never))) => match never {},
            Err(payload) => {
                log_panic(method, path, &*payload);
                drop_quietly(payload);
                drop_quietly(std::mem::replace(&mut this.state, State::Done(None)));
                Poll::Ready(Ok(internal_error()))
            }
        }
    }
}

/// A response body whose panics end the stream with an error instead of unwinding into the
/// connection.
struct CatchPanicBody {
    inner: Option<Body>,
    method: Method,
    path: String,
}

impl hyper::body::Body for CatchPanicBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll_frame(cx))) {
            Ok(frame) => frame,
            Err(payload) => {
                tracing::error!(
                    method = %this.method,
                    path = this.path,
                    panic = panic_message(&*payload),
                    "response body panicked; the response is cut short"
                );
                drop_quietly(payload);
                if let Some(inner) = this.inner.take() {
                    drop_quietly(inner);
                }
                Poll::Ready(Some(Err(axum::Error::new("response body panicked"))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(hyper::body::Body::is_end_stream)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner
            .as_ref()
            .map_or_else(hyper::body::SizeHint::default, |b| {
                hyper::body::Body::size_hint(b)
            })
    }
}

/// Caps request bodies at [`MAX_REQUEST_BODY_BYTES`] (or the limit given): a request whose
/// `Content-Length` is larger gets `413 Payload Too Large` without reaching the inner service;
/// any other body is handed on behind a reader that fails past the limit (axum's extractors
/// answer that with 413). A body nobody reads is never read.
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    inner: S,
    max: usize,
}

impl<S> BodyLimit<S> {
    /// `inner` with the default cap, [`MAX_REQUEST_BODY_BYTES`].
    pub fn new(inner: S) -> Self {
        Self::with_limit(inner, MAX_REQUEST_BODY_BYTES)
    }

    /// `inner` with a cap of `max` bytes.
    pub fn with_limit(inner: S, max: usize) -> Self {
        Self { inner, max }
    }
}

/// The declared body length, if the request declares one.
fn content_length(req: &Request<Body>) -> Option<u64> {
    req.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl<S> tower::Service<Request<Body>> for BodyLimit<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let max = self.max;
        if content_length(&req).is_some_and(|n| n > max as u64) {
            return Box::pin(async move {
                Ok(text_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body too large: more than {max} bytes"),
                ))
            });
        }
        let req = req.map(|body| Body::new(http_body_util::Limited::new(body, max)));
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn send(app: Router, req: Request<Body>) -> (StatusCode, String) {
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn routes() -> Router {
        Router::new()
            .route(
                "/panic",
                axum::routing::get(|| async {
                    if std::hint::black_box(true) {
                        panic!("secret detail");
                    }
                    "unreachable"
                }),
            )
            .route(
                "/echo",
                axum::routing::post(|body: String| async move { body.len().to_string() }),
            )
            .route("/ok", axum::routing::get(|| async { "ok" }))
            .fallback(page_not_found)
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_plain_500_without_the_message() {
        let app = guarded(routes());
        let req = Request::get("/panic").body(Body::empty()).unwrap();
        let (status, body) = send(app.clone(), req).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_SERVER_ERROR)
        );
        let req = Request::get("/ok").body(Body::empty()).unwrap();
        assert_eq!(send(app, req).await, (StatusCode::OK, "ok".to_owned()));
    }

    #[tokio::test]
    async fn bodies_are_capped_by_declaration_and_by_reading() {
        let app = Router::new().fallback_service(BodyLimit::with_limit(routes(), 10));
        let req = Request::post("/echo")
            .body(Body::from("0123456789"))
            .unwrap();
        assert_eq!(send(app.clone(), req).await, (StatusCode::OK, "10".into()));
        let req = Request::post("/echo")
            .header("content-length", "11")
            .body(Body::from("0123456789a"))
            .unwrap();
        let (status, body) = send(app.clone(), req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body, "request body too large: more than 10 bytes");
        // No length declared (a stream): the reader stops at the cap.
        let stream = Body::new(Chunks(vec!["01234", "56789", "ab"]));
        let req = Request::post("/echo").body(stream).unwrap();
        assert_eq!(send(app, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// A body of `chunks` with no declared length (like a chunked upload).
    struct Chunks(Vec<&'static str>);

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.0.is_empty() {
                return Poll::Ready(None);
            }
            let chunk = self.0.remove(0);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(chunk.as_bytes())))))
        }
    }

    #[test]
    fn long_paths_are_cut_for_logs_on_a_char_boundary() {
        assert_eq!(loggable_path("/pods"), "/pods");
        let long = format!("/{}", "é".repeat(300));
        let cut = loggable_path(&long);
        assert!(
            cut.ends_with("...") && cut.len() <= LOGGED_PATH_MAX + 3,
            "{cut}"
        );
    }
}
