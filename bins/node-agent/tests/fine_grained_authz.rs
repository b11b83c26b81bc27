//! The real `node-agent` binary's HTTPS API under `authorization.mode: Webhook` with the
//! `KubeletFineGrainedAuthz` gate (Beta, on by default in 1.35): bearer tokens through
//! TokenReview and SubjectAccessReviews answered by the in-process test API server, a real TLS
//! client (curl). Gate on, `/pods`, `/healthz` and `/configz` ask for `nodes/pods`,
//! `nodes/healthz`, `nodes/configz` first and `nodes/proxy` second; gate off
//! (`--feature-gates=KubeletFineGrainedAuthz=false`), `nodes/proxy` only. The reviews the API
//! server received are checked in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{AgentSpec, curl, remove_pods};
use node_heartbeat::testserver::TestApiServer;

const START: Duration = Duration::from_secs(60);
const REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

const WEBHOOK_CONFIG: &str = "authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
authorization:
  mode: Webhook
";

/// `(user, verb, subresource)` of every SubjectAccessReview received since the last call, in
/// order; each must be about this node (`nodes`, `v1`, name = `node`). Clears the log.
fn take_reviews(server: &TestApiServer, node: &str) -> Vec<(String, String, String)> {
    let out = server
        .requests()
        .into_iter()
        .filter(|r| r.path == REVIEWS)
        .map(|r| {
            let spec = &r.body.as_ref().unwrap()["spec"];
            let attrs = &spec["resourceAttributes"];
            assert_eq!(attrs["resource"], "nodes", "{spec}");
            assert_eq!(attrs["version"], "v1", "{spec}");
            assert_eq!(attrs["name"], node, "{spec}");
            (
                spec["user"].as_str().unwrap().to_owned(),
                attrs["verb"].as_str().unwrap().to_owned(),
                attrs["subresource"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    server.clear_requests();
    out
}

fn gets(user: &str, subresources: &[&str]) -> Vec<(String, String, String)> {
    subresources
        .iter()
        .map(|s| (user.to_owned(), "get".to_owned(), (*s).to_owned()))
        .collect()
}

/// `GET path` as `user` (token `token-<user>`).
fn get_as(agent: &common::Agent, user: &str, path: &str) -> common::Answer {
    let header = format!("Authorization: Bearer token-{user}");
    curl(&["-H", &header, &agent.url(path)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fine_grained_authz_gate_on_and_off() {
    let Some(endpoint) = node_runtime::test_support::cri_endpoint("fine_grained_authz") else {
        return;
    };

    // --- Gate on (the 1.35 default): own subresource first, proxy second. ---
    let server = TestApiServer::start().await.unwrap();
    // One set of users per path, so that the authorizer's caches never answer for a review
    // this test expects to see.
    let paths = [
        ("/pods", "pods"),
        ("/healthz", "healthz"),
        ("/configz", "configz"),
    ];
    for (_, sub) in paths {
        for role in ["reader", "proxier", "nobody"] {
            let user = format!("{sub}-{role}");
            server.add_token(&format!("token-{user}"), &user, &["e2e:authz"]);
        }
        server.allow_access(&format!("{sub}-reader"), sub);
        server.allow_access(&format!("{sub}-proxier"), "proxy");
    }
    let dir = tempfile::tempdir().unwrap();
    let kc = common::write_kubeconfig(dir.path(), &server.url())
        .display()
        .to_string();
    let spec = AgentSpec::new(&dir.path().join("on"), "authz_on", &endpoint)
        .config(WEBHOOK_CONFIG)
        .args(&["--kubeconfig", &kc]);
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    take_reviews(&server, &node);

    for (path, sub) in paths {
        let reader = format!("{sub}-reader");
        let r = get_as(&agent, &reader, path);
        assert_eq!(r.status, 200, "{path} as {reader}: {}", r.body);
        assert_eq!(
            take_reviews(&server, &node),
            gets(&reader, &[sub]),
            "{path}"
        );

        let proxier = format!("{sub}-proxier");
        let r = get_as(&agent, &proxier, path);
        assert_eq!(r.status, 200, "{path} as {proxier}: {}", r.body);
        assert_eq!(
            take_reviews(&server, &node),
            gets(&proxier, &[sub, "proxy"]),
            "{path}"
        );

        let nobody = format!("{sub}-nobody");
        let r = get_as(&agent, &nobody, path);
        assert_eq!(
            (r.status, r.body.as_str()),
            (
                403,
                format!(
                    "Forbidden (user={nobody}, verb=get, resource=nodes, subresource(s)=[{sub} proxy])\n"
                )
                .as_str()
            ),
            "{path}"
        );
        assert_eq!(
            take_reviews(&server, &node),
            gets(&nobody, &[sub, "proxy"]),
            "{path}"
        );
    }
    // What the agent serves: the bodies behind the 200s are the real handlers'.
    let r = get_as(&agent, "healthz-reader", "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = get_as(&agent, "configz-reader", "/configz");
    let configz: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(configz["kubeletconfig"].is_object(), "{}", r.body);
    let r = get_as(&agent, "pods-reader", "/pods");
    let pods: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(pods["kind"], "PodList", "{}", r.body);
    // /podsX is not /pods: proxy only.
    let r = get_as(&agent, "pods-reader", "/podsX");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            403,
            "Forbidden (user=pods-reader, verb=get, resource=nodes, subresource(s)=[proxy])\n"
        )
    );
    // The checkpoint route keeps its own subresource, with no proxy fallback.
    let r = curl(&[
        "-H",
        "Authorization: Bearer token-pods-proxier",
        "-X",
        "POST",
        &agent.url("/checkpoint/default/any/app"),
    ]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            403,
            "Forbidden (user=pods-proxier, verb=create, resource=nodes, subresource(s)=[checkpoint])\n"
        )
    );
    drop(agent);
    remove_pods(&endpoint, &node).await;

    // --- Gate off: proxy only. ---
    let server = TestApiServer::start().await.unwrap();
    for user in ["reader", "proxier"] {
        server.add_token(&format!("token-{user}"), user, &["e2e:authz"]);
    }
    for (_, sub) in paths {
        server.allow_access("reader", sub);
    }
    server.allow_access("proxier", "proxy");
    let kc = common::write_kubeconfig(dir.path(), &server.url())
        .display()
        .to_string();
    let spec = AgentSpec::new(&dir.path().join("off"), "authz_off", &endpoint)
        .config(WEBHOOK_CONFIG)
        .args(&[
            "--kubeconfig",
            &kc,
            "--feature-gates=KubeletFineGrainedAuthz=false",
        ]);
    let node = spec.node.clone();
    let mut agent = spec.spawn();
    agent.wait_healthy(START);
    take_reviews(&server, &node);

    let mut first = true;
    for (path, _) in paths {
        let r = get_as(&agent, "reader", path);
        assert_eq!(
            (r.status, r.body.as_str()),
            (
                403,
                "Forbidden (user=reader, verb=get, resource=nodes, subresource(s)=[proxy])\n"
            ),
            "{path}"
        );
        let r = get_as(&agent, "proxier", path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        // Both answers are cached after the first path (same user, same subresource).
        let expected = if first {
            [gets("reader", &["proxy"]), gets("proxier", &["proxy"])].concat()
        } else {
            Vec::new()
        };
        assert_eq!(take_reviews(&server, &node), expected, "{path}");
        first = false;
    }
    drop(agent);
    remove_pods(&endpoint, &node).await;
}
