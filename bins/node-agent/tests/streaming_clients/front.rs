//! A minimal API server front for kubectl: enough discovery for `pods`, `GET` of one pod
//! (from the agent's `/pods`), and the pod subresources `exec`, `attach`, `portforward` and
//! `log` forwarded to the agent's HTTPS port the way the real API server reaches a kubelet
//! (`pkg/registry/core/pod/strategy.go` `ExecLocation`/`AttachLocation`/
//! `PortForwardLocation`/`LogLocation`: the options become the kubelet's query parameters,
//! the container moves into the path). Upgrades (SPDY from kubectl) are spliced through.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Serves on an ephemeral port; returns its address. `kubelet` is the agent's API port.
pub async fn start(kubelet: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(kubelet, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

fn json(code: u16, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed_unsync());
    *r.status_mut() = StatusCode::from_u16(code).unwrap();
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn not_found() -> Response<Body> {
    json(
        404,
        &serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// The kubelet path for a pod subresource request, or `None` when it is not one.
fn kubelet_path(path: &str, query: &str) -> Option<String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["api", "v1", "namespaces", ns, "pods", name, sub] = parts.as_slice() else {
        return None;
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let container = pairs
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut out = form_urlencoded::Serializer::new(String::new());
    let truthy = |v: &str| v == "true" || v == "1";
    let route = match *sub {
        "exec" | "attach" => {
            for (k, v) in &pairs {
                match k.as_str() {
                    "stdin" if truthy(v) => {
                        out.append_pair("input", "1");
                    }
                    "stdout" if truthy(v) => {
                        out.append_pair("output", "1");
                    }
                    "stderr" if truthy(v) => {
                        out.append_pair("error", "1");
                    }
                    "tty" if truthy(v) => {
                        out.append_pair("tty", "1");
                    }
                    "command" => {
                        out.append_pair("command", v);
                    }
                    _ => {}
                }
            }
            format!("/{sub}/{ns}/{name}/{container}")
        }
        "portforward" => {
            for (k, v) in &pairs {
                if k == "ports" {
                    out.append_pair("port", v);
                }
            }
            format!("/portForward/{ns}/{name}")
        }
        "log" => {
            for (k, v) in &pairs {
                if k != "container" {
                    out.append_pair(k, v);
                }
            }
            format!("/containerLogs/{ns}/{name}/{container}")
        }
        _ => return None,
    };
    let q = out.finish();
    Some(if q.is_empty() {
        route
    } else {
        format!("{route}?{q}")
    })
}

async fn handle(kubelet: SocketAddr, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let resp = match path.as_str() {
        "/api" => json(
            200,
            &serde_json::json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        "/version" => json(
            200,
            &serde_json::json!({"major": "1", "minor": "35", "gitVersion": "v1.35.0",
                "platform": "linux/amd64"}),
        ),
        "/apis" => json(
            200,
            &serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        ),
        "/api/v1" => json(
            200,
            &serde_json::json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                 "verbs": ["get", "list"], "shortNames": ["po"]},
                {"name": "pods/exec", "singularName": "", "namespaced": true, "kind": "PodExecOptions", "verbs": ["create", "get"]},
                {"name": "pods/attach", "singularName": "", "namespaced": true, "kind": "PodAttachOptions", "verbs": ["create", "get"]},
                {"name": "pods/portforward", "singularName": "", "namespaced": true, "kind": "PodPortForwardOptions", "verbs": ["create", "get"]},
                {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}
            ]}),
        ),
        _ => match kubelet_path(&path, &query) {
            Some(target) => forward(kubelet, req, &target).await,
            None => get_pod(kubelet, &path).await,
        },
    };
    Ok(resp)
}

/// `GET /api/v1/namespaces/{ns}/pods/{name}`: the pod from the agent's `/pods`.
async fn get_pod(kubelet: SocketAddr, path: &str) -> Response<Body> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["api", "v1", "namespaces", ns, "pods", name] = parts.as_slice() else {
        return not_found();
    };
    let req = Request::get("/pods")
        .header("host", "kubelet")
        .body(Full::new(Bytes::new()).boxed_unsync())
        .unwrap();
    let Ok(resp) = send(kubelet, req).await else {
        return not_found();
    };
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let found = list["items"].as_array().and_then(|items| {
        items
            .iter()
            .find(|p| p["metadata"]["namespace"] == *ns && p["metadata"]["name"] == *name)
    });
    match found {
        Some(p) => {
            let mut p = p.clone();
            p["kind"] = "Pod".into();
            p["apiVersion"] = "v1".into();
            json(200, &p)
        }
        None => not_found(),
    }
}

/// A TLS connection to the agent (its self-signed certificate accepted) and one request.
async fn send(kubelet: SocketAddr, req: Request<Body>) -> Result<Response<Incoming>, String> {
    let tcp = tokio::net::TcpStream::connect(kubelet)
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(tls_config())
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender.send_request(req).await.map_err(|e| e.to_string())
}

/// Sends the request on to the agent; an upgrade is spliced once both sides switched.
async fn forward(kubelet: SocketAddr, mut req: Request<Incoming>, target: &str) -> Response<Body> {
    let mut out = Request::builder()
        .method(req.method().clone())
        .uri(target)
        .body(Full::new(Bytes::new()).boxed_unsync())
        .unwrap();
    for (k, v) in req.headers() {
        if k != "host" && k != "content-length" && k != "authorization" {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    out.headers_mut().insert("host", "kubelet".parse().unwrap());
    let resp = match send(kubelet, out).await {
        Ok(r) => r,
        Err(e) => return json(500, &serde_json::json!({"message": e})),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = resp.into_parts();
        // Streamed (logs with follow): frames pass as they come; an error ends the body.
        let body = http_body_util::StreamBody::new(futures_lite_stream(body));
        let mut r = Response::new(body.boxed_unsync());
        *r.status_mut() = parts.status;
        *r.headers_mut() = parts.headers;
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::new()).boxed_unsync());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *r.headers_mut() = resp.headers().clone();
    let client = hyper::upgrade::on(&mut req);
    let backend = hyper::upgrade::on(resp);
    tokio::spawn(async move {
        if let (Ok(c), Ok(b)) = tokio::join!(client, backend) {
            let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(c), &mut TokioIo::new(b)).await;
        }
    });
    r
}

/// The frames of `body` as an infallible stream that ends at the first error.
fn futures_lite_stream(
    body: Incoming,
) -> impl futures::Stream<Item = Result<hyper::body::Frame<Bytes>, Infallible>> {
    futures::stream::unfold(Some(body), |state| async move {
        let mut body = state?;
        match body.frame().await {
            Some(Ok(frame)) => Some((Ok(frame), Some(body))),
            _ => None,
        }
    })
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// The agent's self-signed serving certificate is accepted (as `curl -k` does in the other
/// tests); handshake signatures are still checked.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[test]
fn api_options_become_the_kubelets_parameters() {
    assert_eq!(
        kubelet_path(
            "/api/v1/namespaces/default/pods/web/exec",
            "command=sh&command=-c&container=app&stdin=true&stdout=true&stderr=false&tty=false"
        )
        .unwrap(),
        "/exec/default/web/app?command=sh&command=-c&input=1&output=1"
    );
    assert_eq!(
        kubelet_path("/api/v1/namespaces/d/pods/web/portforward", "ports=8080").unwrap(),
        "/portForward/d/web?port=8080"
    );
    assert_eq!(
        kubelet_path(
            "/api/v1/namespaces/d/pods/web/log",
            "container=app&tailLines=2"
        )
        .unwrap(),
        "/containerLogs/d/web/app?tailLines=2"
    );
    assert!(kubelet_path("/api/v1/namespaces/d/pods/web", "").is_none());
}
