//! `ApiObjects` against node-heartbeat's test API server (real HTTP, real JSON, the real watch
//! protocol): the three change detection strategies for configMaps and secrets, services,
//! and service-account tokens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use node_cluster::{ApiObjects, Backoff, ChangeDetection, ObjectOptions};
use node_heartbeat::testserver::TestApiServer;
use node_runtime::objects::{ObjectSource, TokenRequest};

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps/app-config";

fn client(server: &TestApiServer) -> kube::Client {
    kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap()
}

fn options(strategy: ChangeDetection) -> ObjectOptions {
    ObjectOptions {
        backoff: Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(200),
            Duration::from_secs(5),
        ),
        ..ObjectOptions::new(strategy)
    }
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("key".to_owned(), value.to_owned())])),
        ..Default::default()
    }
}

fn service(namespace: &str, name: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}
    }))
    .unwrap()
}

async fn value(objects: &ApiObjects) -> Option<String> {
    objects
        .config_map("default", "app-config")
        .await
        .unwrap()
        .and_then(|c| c.data)
        .and_then(|d| d.get("key").cloned())
}

/// Polls the async condition every 20 ms for at most 20 s.
async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn gets_of(server: &TestApiServer, path: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .count()
}

#[tokio::test]
async fn get_asks_every_time() {
    let server = TestApiServer::start().await.unwrap();
    let objects = ApiObjects::new(client(&server), options(ChangeDetection::Get));
    assert_eq!(value(&objects).await, None);
    server.put_config_map(config_map("app-config", "v1"));
    assert_eq!(value(&objects).await.as_deref(), Some("v1"));
    server.put_config_map(config_map("app-config", "v2"));
    assert_eq!(value(&objects).await.as_deref(), Some("v2"));
    assert_eq!(gets_of(&server, CM_PATH), 3);

    let mut secret = Secret::default();
    secret.metadata.name = Some("creds".into());
    secret.metadata.namespace = Some("default".into());
    server.put_secret(secret);
    let got = objects.secret("default", "creds").await.unwrap().unwrap();
    assert_eq!(got.metadata.name.as_deref(), Some("creds"));
    assert!(objects.secret("default", "other").await.unwrap().is_none());

    server.fail_next([403]);
    let err = objects
        .config_map("default", "app-config")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "couldn't get configMap default/app-config: injected failure 403"
    );
    // Hostile names never reach a URL.
    let err = objects.config_map("default", "../x").await.unwrap_err();
    assert!(err.contains("invalid name"), "{err}");
    assert_eq!(objects.active_watches(), 0);
}

#[tokio::test]
async fn cache_sees_a_change_only_after_the_ttl() {
    let server = TestApiServer::start().await.unwrap();
    let ttl = Duration::from_secs(2);
    let objects = ApiObjects::new(client(&server), options(ChangeDetection::Cache { ttl }));
    // Absence is cached too.
    assert_eq!(value(&objects).await, None);
    server.put_config_map(config_map("app-config", "v1"));
    assert_eq!(value(&objects).await, None);
    assert_eq!(gets_of(&server, CM_PATH), 1);
    wait_until("v1 after the TTL", || async {
        value(&objects).await.as_deref() == Some("v1")
    })
    .await;
    let started = std::time::Instant::now();
    let gets = gets_of(&server, CM_PATH);
    server.put_config_map(config_map("app-config", "v2"));
    // Within the TTL the cached copy answers without a request.
    if started.elapsed() < ttl / 2 {
        assert_eq!(value(&objects).await.as_deref(), Some("v1"));
        assert_eq!(gets_of(&server, CM_PATH), gets);
    }
    wait_until("v2 after the TTL", || async {
        value(&objects).await.as_deref() == Some("v2")
    })
    .await;
    // A failed refresh answers the cached copy (and the next call asks again).
    let fetched = std::time::Instant::now();
    wait_until("the TTL", || async { fetched.elapsed() > ttl }).await;
    server.fail_next([500]);
    let gets = gets_of(&server, CM_PATH);
    assert_eq!(value(&objects).await.as_deref(), Some("v2"));
    assert_eq!(gets_of(&server, CM_PATH), gets + 1);
    assert_eq!(server.requests().last().unwrap().status, 500);
    assert_eq!(value(&objects).await.as_deref(), Some("v2"));
    assert_eq!(gets_of(&server, CM_PATH), gets + 2);
}

#[tokio::test]
async fn watch_follows_changes_and_recovers() {
    let server = TestApiServer::start().await.unwrap();
    // No periodic bookmarks: the cursor only moves with this object's events, so a
    // compaction makes the next watch 410.
    server.set_bookmark_period(None);
    server.put_config_map(config_map("app-config", "v1"));
    let objects = ApiObjects::new(client(&server), options(ChangeDetection::Watch));
    assert_eq!(value(&objects).await.as_deref(), Some("v1"));
    assert_eq!(objects.active_watches(), 1);

    server.put_config_map(config_map("app-config", "v2"));
    wait_until("v2 through the watch", || async {
        value(&objects).await.as_deref() == Some("v2")
    })
    .await;
    server.delete_config_map("default", "app-config");
    wait_until("the deletion", || async { value(&objects).await.is_none() }).await;
    server.put_config_map(config_map("app-config", "v3"));
    wait_until("the re-creation", || async {
        value(&objects).await.as_deref() == Some("v3")
    })
    .await;
    // No GET of the object: everything came through the list and the watch.
    assert_eq!(gets_of(&server, CM_PATH), 0);

    // A dropped watch resumes.
    server.break_watches();
    server.put_config_map(config_map("app-config", "v4"));
    wait_until("v4 after a dropped watch", || async {
        value(&objects).await.as_deref() == Some("v4")
    })
    .await;

    // A compacted history: the resumed watch gets 410 and the source lists again.
    let lists_before = gets_of(&server, "/api/v1/namespaces/default/configmaps");
    let mut other = config_map("unrelated", "x");
    other.metadata.name = Some("unrelated".into());
    server.put_config_map(other);
    server.compact();
    server.break_watches();
    wait_until("a new list after 410", || async {
        // One list + one watch before; a 410 makes a watch, a list and a watch.
        gets_of(&server, "/api/v1/namespaces/default/configmaps") >= lists_before + 3
    })
    .await;
    server.put_config_map(config_map("app-config", "v5"));
    wait_until("v5 after the relist", || async {
        value(&objects).await.as_deref() == Some("v5")
    })
    .await;

    // Dropping the source ends its watches.
    drop(objects);
    wait_until("no open watch", || async { server.watch_count() == 0 }).await;
}

#[tokio::test]
async fn watch_stops_for_immutable_and_unused_objects() {
    let server = TestApiServer::start().await.unwrap();
    let mut frozen = config_map("frozen", "v1");
    frozen.immutable = Some(true);
    server.put_config_map(frozen);
    server.put_config_map(config_map("app-config", "v1"));
    let objects = ApiObjects::new(
        client(&server),
        ObjectOptions {
            sync_frequency: Duration::from_millis(100),
            ..options(ChangeDetection::Watch)
        },
    );
    let got = objects
        .config_map("default", "frozen")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.immutable, Some(true));
    assert_eq!(objects.active_watches(), 0);
    // Still answered from the kept copy.
    assert!(
        objects
            .config_map("default", "frozen")
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(value(&objects).await.as_deref(), Some("v1"));
    assert_eq!(objects.active_watches(), 1);
    // Unused for 5 × 100 ms: dropped (checked on the next call) and its watch closed.
    let asked = std::time::Instant::now();
    wait_until("the idle limit", || async {
        asked.elapsed() > Duration::from_millis(600)
    })
    .await;
    let mut secret = Secret::default();
    secret.metadata.name = Some("creds".into());
    secret.metadata.namespace = Some("default".into());
    server.put_secret(secret);
    assert!(objects.secret("default", "creds").await.unwrap().is_some());
    assert_eq!(objects.active_watches(), 1);
    wait_until("one open watch", || async { server.watch_count() == 1 }).await;

    objects.stop();
    assert_eq!(objects.active_watches(), 0);
    let err = objects
        .config_map("default", "app-config")
        .await
        .unwrap_err();
    assert!(err.starts_with("failed to sync configmap cache"), "{err}");
    wait_until("no open watch", || async { server.watch_count() == 0 }).await;
}

#[tokio::test]
async fn watch_first_sync_times_out() {
    let server = TestApiServer::start().await.unwrap();
    server.put_config_map(config_map("app-config", "v1"));
    server.fail_all(Some(500));
    let objects = ApiObjects::new(
        client(&server),
        ObjectOptions {
            sync_timeout: Duration::from_millis(300),
            ..options(ChangeDetection::Watch)
        },
    );
    let err = objects
        .config_map("default", "app-config")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "failed to sync configmap cache: timed out waiting for the condition"
    );
    server.fail_all(None);
    wait_until("the list after the failures", || async {
        objects
            .config_map("default", "app-config")
            .await
            .is_ok_and(|c| c.is_some())
    })
    .await;
}

async fn service_names(objects: &ApiObjects, namespace: &str) -> Vec<String> {
    let mut names: Vec<String> = objects
        .services(namespace)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            format!(
                "{}/{}",
                s.metadata.namespace.unwrap_or_default(),
                s.metadata.name.unwrap_or_default()
            )
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn services_of_a_namespace_plus_the_master_service() {
    let server = TestApiServer::start().await.unwrap();
    for (ns, name) in [
        ("app", "a"),
        ("app", "b"),
        ("other", "c"),
        ("default", "kubernetes"),
        ("default", "d"),
    ] {
        server.put_service(service(ns, name));
    }
    for strategy in [
        ChangeDetection::Get,
        ChangeDetection::Cache {
            ttl: Duration::from_millis(200),
        },
        ChangeDetection::Watch,
    ] {
        let objects = ApiObjects::new(client(&server), options(strategy));
        assert_eq!(
            service_names(&objects, "app").await,
            ["app/a", "app/b", "default/kubernetes"],
            "{strategy:?}"
        );
        assert_eq!(
            service_names(&objects, "default").await,
            ["default/d", "default/kubernetes"],
            "{strategy:?}"
        );
        assert_eq!(
            service_names(&objects, "empty").await,
            ["default/kubernetes"],
            "{strategy:?}"
        );
        server.put_service(service("app", "e"));
        wait_until("the new service", || async {
            service_names(&objects, "app").await.len() == 4
        })
        .await;
        server.delete_service("app", "e");
        wait_until("the deleted service", || async {
            service_names(&objects, "app").await.len() == 3
        })
        .await;
    }
}

fn token_request(pod: &str, uid: &str, audiences: &[&str], seconds: i64) -> TokenRequest {
    TokenRequest {
        namespace: "default".into(),
        service_account: "builder".into(),
        audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        expiration_seconds: seconds,
        pod_name: pod.into(),
        pod_uid: uid.into(),
    }
}

fn token_posts(server: &TestApiServer) -> Vec<serde_json::Value> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/token"))
        .map(|r| r.body.unwrap())
        .collect()
}

#[tokio::test]
async fn tokens_are_requested_bound_and_reused() {
    let server = TestApiServer::start().await.unwrap();
    let objects = ApiObjects::new(client(&server), options(ChangeDetection::Get));
    let with_audience = token_request("web", "uid-1", &["vault"], 3600);
    let t1 = objects.token(&with_audience).await.unwrap();
    assert!(t1.token.contains("web"), "{}", t1.token);
    let left = t1.expiration.duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(3500), "{left:?}");

    let posts = token_posts(&server);
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0],
        serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {},
            "spec": {
                "audiences": ["vault"],
                "expirationSeconds": 3600,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "uid-1"}
            }
        })
    );
    let received = server.token_requests();
    assert_eq!(received[0].namespace, "default");
    assert_eq!(received[0].service_account, "builder");

    // A fresh token is reused.
    assert_eq!(objects.token(&with_audience).await.unwrap(), t1);
    assert_eq!(token_posts(&server).len(), 1);

    // No audiences: the field is left out (the API server's default audiences apply).
    let plain = token_request("web", "uid-1", &[], 3600);
    let t2 = objects.token(&plain).await.unwrap();
    assert_ne!(t2.token, t1.token);
    let posts = token_posts(&server);
    assert_eq!(posts.len(), 2);
    assert!(posts[1]["spec"].get("audiences").is_none(), "{}", posts[1]);

    // Too short or too long: refused before asking, with the API's validation text.
    let err = objects
        .token(&token_request("web", "uid-1", &[], 599))
        .await
        .unwrap_err();
    assert!(
        err.ends_with("may not specify a duration less than 10 minutes"),
        "{err}"
    );
    let err = objects
        .token(&token_request("web", "uid-1", &[], (1 << 32) + 1))
        .await
        .unwrap_err();
    assert!(
        err.ends_with("may not specify a duration larger than 2^32 seconds"),
        "{err}"
    );
    assert_eq!(token_posts(&server).len(), 2);

    // forget_pod drops the pod's tokens: the next call asks again.
    let other = token_request("db", "uid-2", &[], 3600);
    objects.token(&other).await.unwrap();
    assert_eq!(objects.cached_tokens(), 3);
    objects.forget_pod("uid-1");
    assert_eq!(objects.cached_tokens(), 1);
    let t3 = objects.token(&plain).await.unwrap();
    assert_ne!(t3.token, t2.token);
    assert_eq!(token_posts(&server).len(), 4);
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed() {
    let server = TestApiServer::start().await.unwrap();
    let objects = ApiObjects::new(client(&server), options(ChangeDetection::Get));
    let request = token_request("web", "uid-1", &[], 600);

    // Issued for 60 s though 600 were asked: past 80 % of its lifetime at once.
    server.set_token_lifetime(Some(Duration::from_secs(60)));
    let t1 = objects.token(&request).await.unwrap();
    let t2 = objects.token(&request).await.unwrap();
    assert_ne!(t1.token, t2.token);
    assert_eq!(token_posts(&server).len(), 2);

    // A failed refresh keeps the old token while it is valid.
    server.fail_next([500]);
    assert_eq!(objects.token(&request).await.unwrap(), t2);

    // ... but not once it expired.
    server.set_token_lifetime(Some(Duration::from_secs(1)));
    let t4 = objects.token(&request).await.unwrap();
    wait_until("the token's expiry", || async {
        SystemTime::now() > t4.expiration
    })
    .await;
    server.fail_next([500]);
    let err = objects.token(&request).await.unwrap_err();
    assert!(err.starts_with("token "), "{err}");
    assert!(
        err.ends_with("expired and refresh failed: injected failure 500"),
        "{err}"
    );

    // With a normal lifetime the next one is reused again.
    server.set_token_lifetime(None);
    let t5 = objects.token(&request).await.unwrap();
    assert_eq!(objects.token(&request).await.unwrap(), t5);
}

#[tokio::test]
async fn token_404_messages() {
    let server = TestApiServer::start().await.unwrap();
    let request = token_request("web", "uid-1", &[], 3600);

    // The endpoint exists: a 404 (say, a missing service account) is reported as it is.
    let objects = ApiObjects::new(client(&server), options(ChangeDetection::Get));
    server.fail_next([404]);
    let err = objects.token(&request).await.unwrap_err();
    assert_eq!(err, "failed to fetch token: injected failure 404");

    // No TokenRequest support on the server.
    server.set_token_endpoint(false);
    let objects = ApiObjects::new(client(&server), options(ChangeDetection::Get));
    let err = objects.token(&request).await.unwrap_err();
    assert_eq!(
        err,
        "failed to fetch token: the API server does not have TokenRequest endpoints enabled"
    );
}
