//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's CRI log file, read as the
//! kubelet's log reader does ([`node_runtime::cri_logs`]) and streamed in chunks.
//!
//! The answers follow the kubelet's `getContainerLogs`:
//!
//! * 400 `{"message": "Missing podID."}` / `Missing container name.` / `Missing podNamespace.`
//!   for an empty path part;
//! * 400 `{"message": "Unable to decode query."}`, 422 `{"message": "Invalid request."}`, and 400
//!   `unable to return the given log stream: "<stream>"` while `PodLogsQuerySplitStreams` is
//!   off ([`node_runtime::cri_logs::parse_query`]);
//! * 404 `pod "<pod>" does not exist` and `container "<c>" not found in pod "<pod>"`;
//! * 400 with the kubelet's text when the container has no log to show yet (waiting, no
//!   previous instance) or its log cannot be opened;
//! * otherwise 200, `Content-Type: text/plain`, a chunked body flushed as the reader produces
//!   it. `previous=true` reads the instance named by `lastState.terminated.containerID`;
//!   otherwise the current one. With `follow` the body goes on while CRI `ContainerStatus`
//!   says the container runs (an unavailable runtime counts as running), and the reader stops
//!   as soon as the client goes away. A failure after the body started ends the body.

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{StatusCode, header};
use node_runtime::cri_logs::{LogReader, parse_query};
use node_runtime::{ContainerInfo, ContainerState, cri};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::{ApiError, PodApi};

/// Chunks buffered between the file reader and the connection.
const CHANNEL_CHUNKS: usize = 8;

/// How the route behaves beyond the kubelet's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogsOptions {
    /// The `PodLogsQuerySplitStreams` feature gate (off by default in 1.35): on, `stream=Stdout`
    /// and `stream=Stderr` select one stream; off, they are refused with 400.
    pub split_streams: bool,
}

#[derive(Clone)]
struct LogsState {
    api: PodApi,
    options: LogsOptions,
}

/// This module's routes over `api`, with the kubelet's default feature gates.
pub fn router(api: PodApi) -> Router {
    router_with(api, LogsOptions::default())
}

/// This module's routes over `api` with `options`.
pub fn router_with(api: PodApi, options: LogsOptions) -> Router {
    let state = LogsState { api, options };
    Router::new()
        .route("/containerLogs", get(missing_parts))
        .route("/containerLogs/", get(missing_parts))
        .route("/containerLogs/{*rest}", get(container_logs))
        .with_state(state)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// The kubelet's answer for `e`.
fn respond(e: ApiError) -> Response {
    match e {
        ApiError::BadRequest(m) => text(StatusCode::BAD_REQUEST, m),
        ApiError::Invalid(m) => text(StatusCode::UNPROCESSABLE_ENTITY, m),
        ApiError::NotFound(m) => text(StatusCode::NOT_FOUND, m),
        ApiError::Runtime(e) => text(StatusCode::BAD_REQUEST, node_util::error_chain(&e)),
        ApiError::Internal(m) => text(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}

async fn missing_parts() -> Response {
    respond(ApiError::BadRequest(
        r#"{"message": "Missing podID."}"#.to_owned(),
    ))
}

/// `namespace`, `pod` and `container` from the path after `/containerLogs/`, checked in the
/// kubelet's order (pod, container, namespace).
fn path_parts(rest: &str) -> Result<(&str, &str, &str), ApiError> {
    let mut parts = rest.split('/');
    let namespace = parts.next().unwrap_or_default();
    let pod = parts.next().unwrap_or_default();
    let container = parts.next().unwrap_or_default();
    if parts.next().is_some() {
        return Err(ApiError::NotFound("404 page not found".to_owned()));
    }
    let bad = |m: &str| Err(ApiError::BadRequest(format!(r#"{{"message": "{m}"}}"#)));
    if pod.is_empty() {
        return bad("Missing podID.");
    }
    if container.is_empty() {
        return bad("Missing container name.");
    }
    if namespace.is_empty() {
        return bad("Missing podNamespace.");
    }
    Ok((namespace, pod, container))
}

/// The runtime ID of the instance whose log to read (the kubelet's
/// `validateContainerLogStatus`), or the kubelet's 400 text.
pub fn container_instance(
    pod: &str,
    container: &ContainerInfo,
    previous: bool,
) -> Result<String, String> {
    let name = &container.name;
    let last_terminated = match &container.last_state {
        Some(ContainerState::Terminated { container_id, .. }) => Some(container_id.as_str()),
        _ => None,
    };
    if previous {
        return match last_terminated {
            Some(id) if !id.is_empty() => Ok(id.to_owned()),
            _ => Err(format!(
                "previous terminated container {name:?} in pod {pod:?} not found"
            )),
        };
    }
    let terminated = || format!("container {name:?} in pod {pod:?} is terminated");
    match (&container.state, last_terminated) {
        (ContainerState::Running { .. }, _) => container.container_id.clone().ok_or_else(|| {
            format!("container {name:?} in pod {pod:?} is waiting to start - no logs yet")
        }),
        (ContainerState::Terminated { container_id, .. }, last) => {
            if !container_id.is_empty() {
                Ok(container_id.clone())
            } else {
                match last {
                    Some(id) if !id.is_empty() => Ok(id.to_owned()),
                    _ => Err(terminated()),
                }
            }
        }
        (_, Some(id)) => {
            if id.is_empty() {
                Err(terminated())
            } else {
                Ok(id.to_owned())
            }
        }
        (ContainerState::Waiting { reason, .. }, None) => Err(match reason.as_str() {
            "ErrImagePull" => format!(
                "container {name:?} in pod {pod:?} is waiting to start: image can't be pulled"
            ),
            "ImagePullBackOff" => format!(
                "container {name:?} in pod {pod:?} is waiting to start: trying and failing to pull image"
            ),
            "" => format!("container {name:?} in pod {pod:?} is waiting to start - no logs yet"),
            other => format!("container {name:?} in pod {pod:?} is waiting to start: {other}"),
        }),
    }
}

async fn container_logs(
    State(state): State<LogsState>,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match serve(&state, &rest, query.as_deref().unwrap_or_default()).await {
        Ok(response) => response,
        Err(e) => respond(e),
    }
}

async fn serve(state: &LogsState, rest: &str, query: &str) -> Result<Response, ApiError> {
    let (namespace, pod_name, container_name) = path_parts(rest)?;
    let request = parse_query(query, jiff::Timestamp::now(), state.options.split_streams).map_err(
        |r| match r.status {
            422 => ApiError::Invalid(r.message),
            _ => ApiError::BadRequest(r.message),
        },
    )?;
    let api = &state.api;
    let pod = api
        .pod(namespace, pod_name)
        .ok_or_else(|| ApiError::NotFound(format!("pod {pod_name:?} does not exist")))?;
    let container = pod.container(container_name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "container {container_name:?} not found in pod {pod_name:?}"
        ))
    })?;
    let id =
        container_instance(&pod.name, container, request.previous).map_err(ApiError::BadRequest)?;
    let status = api.cri().container_status(&id).await.map_err(|e| {
        ApiError::BadRequest(format!(
            "failed to get container status {id:?}: {}",
            node_util::error_chain(&e)
        ))
    })?;
    let path = std::path::PathBuf::from(&status.log_path);
    let reader = LogReader::open(&path, &request.options)
        .await
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "failed to open log file {:?}: {}",
                status.log_path,
                node_util::error_chain(&e)
            ))
        })?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let cri = api.cri().clone();
    let running_id = id.clone();
    let still_running = move || {
        let (cri, id) = (cri.clone(), running_id.clone());
        async move {
            match cri.container_status(&id).await {
                Ok(s) => s.state == cri::ContainerState::ContainerRunning as i32,
                // A runtime that is not answering keeps its containers running.
                Err(e) => e.grpc_code() == Some(tonic::Code::Unavailable),
            }
        }
    };
    tokio::spawn(async move {
        if let Err(e) = reader.run(tx, still_running).await {
            tracing::info!(container = %id, error = %node_util::error_chain(&e), "container log stream ended early");
        }
    });
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use http_body_util::BodyExt;
    use node_runtime::test_support::FakeCri;
    use node_runtime::{
        ClientOptions, ContainerKind, CriClient, PodInfo, PodPhase, PodRegistry, PodSource,
    };
    use tower::ServiceExt;

    use super::*;

    fn info(state: ContainerState, last: Option<ContainerState>) -> ContainerInfo {
        ContainerInfo {
            name: "app".into(),
            kind: ContainerKind::Regular,
            container_id: Some("current".into()),
            image: "busybox".into(),
            state,
            restart_count: 1,
            ready: false,
            log_path: None,
            image_id: None,
            last_state: last,
            started: None,
        }
    }

    fn terminated(id: &str) -> ContainerState {
        ContainerState::Terminated {
            exit_code: 1,
            reason: "Error".into(),
            started_at: 1,
            finished_at: 2,
            message: String::new(),
            container_id: id.into(),
        }
    }

    fn waiting(reason: &str) -> ContainerState {
        ContainerState::Waiting {
            reason: reason.into(),
            message: String::new(),
        }
    }

    #[test]
    fn which_instance_is_read() {
        let running = ContainerState::Running { started_at: 1 };
        let pick = |c: &ContainerInfo, previous| container_instance("p", c, previous);
        assert_eq!(
            pick(&info(running.clone(), None), false).unwrap(),
            "current"
        );
        assert_eq!(
            pick(&info(running.clone(), Some(terminated("old"))), true).unwrap(),
            "old"
        );
        assert_eq!(
            pick(&info(running, None), true).unwrap_err(),
            r#"previous terminated container "app" in pod "p" not found"#
        );
        assert_eq!(pick(&info(terminated("t"), None), false).unwrap(), "t");
        assert_eq!(
            pick(&info(terminated(""), Some(terminated("old"))), false).unwrap(),
            "old"
        );
        assert_eq!(
            pick(&info(terminated(""), None), false).unwrap_err(),
            r#"container "app" in pod "p" is terminated"#
        );
        // Crash-looping: waiting, with the last instance's log.
        assert_eq!(
            pick(
                &info(waiting("CrashLoopBackOff"), Some(terminated("old"))),
                false
            )
            .unwrap(),
            "old"
        );
        for (reason, want) in [
            ("ErrImagePull", "is waiting to start: image can't be pulled"),
            (
                "ImagePullBackOff",
                "is waiting to start: trying and failing to pull image",
            ),
            (
                "ContainerCreating",
                "is waiting to start: ContainerCreating",
            ),
            ("", "is waiting to start - no logs yet"),
        ] {
            assert_eq!(
                pick(&info(waiting(reason), None), false).unwrap_err(),
                format!(r#"container "app" in pod "p" {want}"#)
            );
        }
    }

    #[test]
    fn path_parts_in_the_kubelets_order() {
        assert_eq!(path_parts("ns/p/c").unwrap(), ("ns", "p", "c"));
        let msg = |rest| match path_parts(rest) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("{rest}: {other:?}"),
        };
        assert_eq!(msg("ns//c"), r#"{"message": "Missing podID."}"#);
        assert_eq!(msg("ns"), r#"{"message": "Missing podID."}"#);
        assert_eq!(msg("ns/p/"), r#"{"message": "Missing container name."}"#);
        assert_eq!(msg("/p/c"), r#"{"message": "Missing podNamespace."}"#);
        assert!(matches!(path_parts("ns/p/c/x"), Err(ApiError::NotFound(_))));
    }

    struct Setup {
        _dir: tempfile::TempDir,
        _fake: FakeCri,
        router: Router,
        log: std::path::PathBuf,
    }

    async fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeCri::start(dir.path()).unwrap();
        let cri = CriClient::connect(&fake.endpoint(), &ClientOptions::default())
            .await
            .unwrap();
        let log = dir.path().join("0.log");
        let (sandbox, id) = node_runtime::test_support::run_logging_container(&cri, &log)
            .await
            .unwrap();
        let registry = PodRegistry::new();
        let mut container = info(ContainerState::Running { started_at: 1 }, None);
        container.container_id = Some(id);
        registry.upsert(PodInfo {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "uid".into(),
            source: PodSource::Api,
            pod: None,
            sandbox_id: Some(sandbox),
            pod_ips: vec![],
            phase: PodPhase::Running,
            reason: None,
            message: None,
            conditions: vec![],
            containers: vec![container],
        });
        Setup {
            router: router(PodApi::new(
                "node",
                registry,
                cri,
                node_runtime::NodePaths {
                    root_dir: dir.path().join("root"),
                    pod_logs_dir: dir.path().join("logs"),
                },
            )),
            _fake: fake,
            _dir: dir,
            log,
        }
    }

    async fn get(router: &Router, uri: &str) -> (u16, String, Option<String>) {
        let response = router
            .clone()
            .oneshot(http::Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned(), kind)
    }

    #[tokio::test]
    async fn serves_the_log_and_the_kubelets_errors() {
        let s = setup().await;
        std::fs::write(
            &s.log,
            "2026-01-02T03:04:05Z stdout F one\n2026-01-02T03:04:06Z stderr F two\n",
        )
        .unwrap();
        let (status, body, kind) = get(&s.router, "/containerLogs/ns/p/app").await;
        assert_eq!((status, body.as_str()), (200, "one\ntwo\n"));
        assert_eq!(kind.as_deref(), Some("text/plain"));
        let (status, body, _) = get(
            &s.router,
            "/containerLogs/ns/p/app?tailLines=1&timestamps=true",
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, "2026-01-02T03:04:06.000000000Z two\n")
        );
        let (status, body, _) = get(&s.router, "/containerLogs/ns/p/app?limitBytes=5").await;
        assert_eq!((status, body.as_str()), (200, "one\nt"));

        for (uri, want_status, want_body) in [
            (
                "/containerLogs/ns/nope/app",
                404,
                r#"pod "nope" does not exist"#,
            ),
            (
                "/containerLogs/ns/p/nope",
                404,
                r#"container "nope" not found in pod "p""#,
            ),
            (
                "/containerLogs/other/p/app",
                404,
                r#"pod "p" does not exist"#,
            ),
            (
                "/containerLogs/ns/p/",
                400,
                r#"{"message": "Missing container name."}"#,
            ),
            (
                "/containerLogs/ns/p/app?tailLines=x",
                400,
                r#"{"message": "Unable to decode query."}"#,
            ),
            (
                "/containerLogs/ns/p/app?tailLines=-1",
                422,
                r#"{"message": "Invalid request."}"#,
            ),
            (
                "/containerLogs/ns/p/app?stream=Stdout",
                400,
                r#"unable to return the given log stream: "Stdout". Please enable PodLogsQuerySplitStreams feature gate in kubelet"#,
            ),
            (
                "/containerLogs/ns/p/app?previous=true",
                400,
                r#"previous terminated container "app" in pod "p" not found"#,
            ),
        ] {
            let (status, body, _) = get(&s.router, uri).await;
            assert_eq!((status, body.as_str()), (want_status, want_body), "{uri}");
        }

        // The file gone: the kubelet's 400.
        std::fs::remove_file(&s.log).unwrap();
        let (status, body, _) = get(&s.router, "/containerLogs/ns/p/app").await;
        assert_eq!(status, 400);
        assert!(body.starts_with("failed to open log file"), "{body}");
    }
}
