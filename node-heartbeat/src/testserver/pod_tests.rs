//! Pods, watches and events through a real `kube::Client`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use std::pin::Pin;

use k8s_openapi::api::core::v1::{Event, ObjectReference, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent,
    WatchParams,
};
use kube::core::Status;
use serde_json::json;
use tokio_stream::{Stream, StreamExt};

use super::TestApiServer;

fn client(server: &TestApiServer) -> kube::Client {
    kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap()
}

fn pod(ns: &str, name: &str, node: Option<&str>, labels: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": node},
    }))
    .unwrap()
}

fn api_status(e: kube::Error) -> Box<Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rv(p: &Pod) -> u64 {
    p.metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

type Events = Pin<Box<dyn Stream<Item = kube::Result<WatchEvent<Pod>>> + Send>>;

async fn open(api: &Api<Pod>, wp: &WatchParams, rv: &str) -> Events {
    Box::pin(api.watch(wp, rv).await.unwrap())
}

/// The next event, bookmarks included, within 10 s.
async fn next(w: &mut Events) -> WatchEvent<Pod> {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("no watch event within 10 s")
        .expect("the watch stream ended")
        .unwrap()
}

/// The next event that is not a BOOKMARK, within 10 s.
async fn next_event(stream: &mut Events) -> WatchEvent<Pod> {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("no watch event within 10 s")
            .expect("the watch stream ended")
            .unwrap();
        if !matches!(ev, WatchEvent::Bookmark(_)) {
            return ev;
        }
    }
}

fn summary(ev: &WatchEvent<Pod>) -> (&'static str, String, u64) {
    let (t, p) = match ev {
        WatchEvent::Added(p) => ("ADDED", p),
        WatchEvent::Modified(p) => ("MODIFIED", p),
        WatchEvent::Deleted(p) => ("DELETED", p),
        other => panic!("unexpected {other:?}"),
    };
    (t, p.metadata.name.clone().unwrap(), rv(p))
}

/// Polls `cond` until it holds (at most 10 s).
async fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn pods_create_get_list_with_selectors() {
    let server = TestApiServer::start().await.unwrap();
    let c = client(&server);
    let ns1: Api<Pod> = Api::namespaced(c.clone(), "ns1");
    let ns2: Api<Pod> = Api::namespaced(c.clone(), "ns2");
    let all: Api<Pod> = Api::all(c.clone());
    let pp = PostParams::default();

    let a = ns1
        .create(&pp, &pod("ns1", "a", Some("node-a"), json!({"app": "web"})))
        .await
        .unwrap();
    assert!(a.metadata.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert_eq!(a.metadata.generation, Some(1));
    assert!(a.metadata.creation_timestamp.is_some());
    assert_eq!(a.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(
        a.spec.as_ref().unwrap().termination_grace_period_seconds,
        Some(30)
    );
    let b = ns2
        .create(&pp, &pod("ns2", "b", Some("node-a"), json!({"app": "db"})))
        .await
        .unwrap();
    assert!(rv(&b) > rv(&a));
    assert_ne!(a.metadata.uid, b.metadata.uid);
    ns1.create(&pp, &pod("ns1", "c", None, json!({})))
        .await
        .unwrap();

    let dup = api_status(
        ns1.create(&pp, &pod("ns1", "a", None, json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    let wrong_ns = api_status(
        ns1.create(&pp, &pod("ns2", "x", None, json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(wrong_ns.code, 400);

    assert_eq!(ns1.get("a").await.unwrap().metadata.uid, a.metadata.uid);
    let missing = api_status(ns1.get("nope").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "pods \"nope\" not found");
    assert_eq!(missing.details.unwrap().kind, "pods");

    let names = |l: kube::core::ObjectList<Pod>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|p| p.metadata.name.unwrap())
            .collect()
    };
    let on_a = all
        .list(&ListParams::default().fields("spec.nodeName=node-a"))
        .await
        .unwrap();
    assert_eq!(
        on_a.metadata.resource_version,
        Some(server.resource_version().to_string())
    );
    assert_eq!(names(on_a), ["a", "b"]);
    let lp = ListParams::default().fields("spec.nodeName==node-a,metadata.namespace!=ns2");
    assert_eq!(names(all.list(&lp).await.unwrap()), ["a"]);
    let unbound = ListParams::default().fields("spec.nodeName=");
    assert_eq!(names(all.list(&unbound).await.unwrap()), ["c"]);
    assert_eq!(
        names(ns1.list(&ListParams::default()).await.unwrap()),
        ["a", "c"]
    );
    let lp = ListParams::default().fields("status.phase=Pending,metadata.name=b");
    assert_eq!(names(all.list(&lp).await.unwrap()), ["b"]);
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("app"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("app!=web"))
                .await
                .unwrap()
        ),
        ["c", "b"]
    );
    let bad = api_status(
        all.list(&ListParams::default().fields("spec.foo=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));
    assert_eq!(bad.message, "field label not supported: spec.foo");

    // Optimistic concurrency on PUT.
    let mut stale = ns1.get("a").await.unwrap();
    server
        .update_pod("ns1", "a", |p| {
            p.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("touched".into(), "yes".into());
        })
        .unwrap();
    stale.metadata.annotations = Some([("k".to_owned(), "v".to_owned())].into());
    let conflict = api_status(ns1.replace("a", &pp, &stale).await.unwrap_err());
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(conflict.message.ends_with(
        "the object has been modified; please apply your changes to the latest version and try again"
    ));
    let mut fresh = ns1.get("a").await.unwrap();
    fresh.metadata.annotations = Some([("k".to_owned(), "v".to_owned())].into());
    let replaced = ns1.replace("a", &pp, &fresh).await.unwrap();
    assert!(rv(&replaced) > rv(&fresh));
    assert_eq!(replaced.metadata.generation, Some(1));

    // A merge patch on the pod itself (labels).
    let patched = ns1
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": null, "x": "1"}}})),
        )
        .await
        .unwrap();
    let labels = patched.metadata.labels.unwrap();
    assert_eq!(labels.get("x").map(String::as_str), Some("1"));
    assert!(!labels.contains_key("touched"));
    assert_eq!(server.pods().len(), 3);
}

#[tokio::test]
async fn watch_from_zero_and_from_a_resource_version() {
    let server = TestApiServer::start().await.unwrap();
    server.set_bookmark_period(None);
    let pods: Api<Pod> = Api::all(client(&server));
    let first = server
        .create_pod(pod("ns", "a", Some("node-a"), json!({})))
        .unwrap();
    server
        .create_pod(pod("ns", "elsewhere", Some("node-b"), json!({})))
        .unwrap();

    let wp = WatchParams::default().fields("spec.nodeName=node-a");
    let mut w = open(&pods, &wp, "0").await;
    let ev = next_event(&mut w).await;
    assert_eq!(summary(&ev), ("ADDED", "a".into(), rv(&first)));

    server
        .create_pod(pod("ns", "b", Some("node-a"), json!({})))
        .unwrap();
    server
        .update_pod("ns", "a", |p| {
            p.status.get_or_insert_with(Default::default).phase = Some("Running".into());
        })
        .unwrap();
    // A pod moving onto the node starts matching: ADDED; moving off: DELETED.
    server
        .update_pod("ns", "elsewhere", |p| {
            p.spec.as_mut().unwrap().node_name = Some("node-a".into());
        })
        .unwrap();
    server
        .update_pod("ns", "elsewhere", |p| {
            p.spec.as_mut().unwrap().node_name = Some("node-c".into());
        })
        .unwrap();
    server.delete_pod("ns", "b", Some(0)).unwrap();

    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(summary(&next_event(&mut w).await));
    }
    let kinds: Vec<(&str, &str)> = seen.iter().map(|(t, n, _)| (*t, n.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("ADDED", "b"),
            ("MODIFIED", "a"),
            ("ADDED", "elsewhere"),
            ("DELETED", "elsewhere"),
            ("MODIFIED", "b"),
            ("DELETED", "b"),
        ]
    );
    assert!(seen.windows(2).all(|p| p[0].2 < p[1].2), "{seen:?}");
    assert_eq!(seen[5].2, server.resource_version());
    assert!(server.pod("ns", "b").is_none());

    // From a resourceVersion: the history after it, then live events.
    let after_added_b = seen[0].2;
    let mut w2 = open(&pods, &wp, &after_added_b.to_string()).await;
    let replay: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(summary(&next_event(&mut w2).await));
        }
        v
    };
    assert_eq!(replay, seen[1..]);
    server
        .create_pod(pod("ns", "c", Some("node-a"), json!({})))
        .unwrap();
    assert_eq!(summary(&next_event(&mut w2).await).1, "c");
    assert_eq!(summary(&next_event(&mut w).await).1, "c");
}

#[tokio::test]
async fn watch_gets_410_after_compact() {
    let server = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&server), "ns");
    let a = server
        .create_pod(pod("ns", "a", Some("n"), json!({})))
        .unwrap();
    server
        .update_pod("ns", "a", |p| {
            p.metadata.annotations = Some([("x".to_owned(), "1".to_owned())].into());
        })
        .unwrap();
    server.compact();
    let floor = server.resource_version();
    let old = rv(&a).to_string();
    let mut w = open(&pods, &WatchParams::default(), &old).await;
    match next_event(&mut w).await {
        WatchEvent::Error(s) => {
            assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
            assert_eq!(
                s.message,
                format!("too old resource version: {old} ({floor})")
            );
        }
        other => panic!("expected a 410 error, got {other:?}"),
    }
    let end = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap();
    assert!(end.is_none(), "the stream ends after the error");
    // Watching from the floor is fine.
    let mut w = open(&pods, &WatchParams::default(), &floor.to_string()).await;
    server
        .create_pod(pod("ns", "b", Some("n"), json!({})))
        .unwrap();
    assert_eq!(summary(&next_event(&mut w).await).1, "b");
}

#[tokio::test]
async fn break_watches_and_timeout_end_streams() {
    let server = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::all(client(&server));
    server
        .create_pod(pod("ns", "a", Some("n"), json!({})))
        .unwrap();
    let mut w = open(&pods, &WatchParams::default(), "0").await;
    assert!(matches!(next_event(&mut w).await, WatchEvent::Added(_)));
    wait_for(|| server.watch_count() == 1).await;
    server.break_watches();
    assert_eq!(server.watch_count(), 0);
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = w.next().await {
            assert!(matches!(ev, Ok(WatchEvent::Bookmark(_))), "{ev:?}");
        }
    })
    .await;
    assert!(end.is_ok(), "the stream did not end");

    // timeoutSeconds ends the stream on its own.
    let wp = WatchParams::default().timeout(1);
    let mut w = open(&pods, &wp, "0").await;
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while w.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "timeoutSeconds did not end the stream");

    // stop() ends open watches too (the connection goes away); restart() serves them again.
    let mut w = open(&pods, &WatchParams::default(), "0").await;
    assert!(matches!(next_event(&mut w).await, WatchEvent::Added(_)));
    wait_for(|| server.watch_count() == 1).await;
    server.stop();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = w.next().await {}
    })
    .await;
    assert!(end.is_ok(), "stop() did not end the stream");
    assert_eq!(server.watch_count(), 0);
    server.restart().await.unwrap();
    let mut w = open(&pods, &WatchParams::default(), "0").await;
    assert!(matches!(next_event(&mut w).await, WatchEvent::Added(_)));
}

#[tokio::test]
async fn bookmarks_on_demand_and_periodic() {
    let server = TestApiServer::start().await.unwrap();
    server.set_bookmark_period(None);
    let pods: Api<Pod> = Api::all(client(&server));
    let mut w = open(&pods, &WatchParams::default(), "0").await;
    wait_for(|| server.watch_count() == 1).await;
    let a = server
        .create_pod(pod("ns", "a", Some("n"), json!({})))
        .unwrap();
    // Writes that are not pods move the resourceVersion too.
    let now = server.resource_version();
    server.send_bookmarks();
    assert!(matches!(next(&mut w).await, WatchEvent::Added(p) if rv(&p) == rv(&a)));
    match next(&mut w).await {
        WatchEvent::Bookmark(b) => {
            assert_eq!(b.metadata.resource_version, now.to_string());
            assert_eq!(b.types.kind, "Pod");
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }

    // Without allowWatchBookmarks: none.
    let mut quiet = open(
        &pods,
        &WatchParams::default().disable_bookmarks(),
        &now.to_string(),
    )
    .await;
    wait_for(|| server.watch_count() == 2).await;
    server.send_bookmarks();
    server
        .create_pod(pod("ns", "b", Some("n"), json!({})))
        .unwrap();
    assert!(matches!(next(&mut quiet).await, WatchEvent::Added(_)));

    // Periodic ones.
    server.set_bookmark_period(Some(Duration::from_millis(20)));
    let mut periodic = open(
        &pods,
        &WatchParams::default(),
        &server.resource_version().to_string(),
    )
    .await;
    match next(&mut periodic).await {
        WatchEvent::Bookmark(b) => {
            assert_eq!(
                b.metadata.resource_version,
                server.resource_version().to_string()
            );
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn status_patch_merges_conditions_and_checks_uid() {
    let server = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&server), "ns");
    let mut p = pod("ns", "a", Some("n"), json!({}));
    p.status = Some(
        serde_json::from_value(json!({
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            ],
            "podIPs": [{"ip": "10.0.0.7"}],
        }))
        .unwrap(),
    );
    let created = server.create_pod(p).unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    let mut w = open(&pods, &WatchParams::default(), &rv(&created).to_string()).await;

    // What the kubelet's status manager sends: a two-way strategic merge patch with the UID.
    let patch = json!({
        "metadata": {"uid": uid},
        "status": {
            "$setElementOrder/conditions": [
                {"type": "Initialized"}, {"type": "Ready"}, {"type": "PodScheduled"}
            ],
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True", "reason": null},
            ],
            "podIPs": [{"ip": "fd00::7"}],
            "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0}],
            "phase": "Running",
        }
    });
    let out = pods
        .patch_status("a", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    let st = out.status.clone().unwrap();
    let conds: Vec<(String, String, Option<String>)> = st
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status, c.reason))
        .collect();
    assert_eq!(
        conds,
        [
            ("Initialized".into(), "True".into(), None),
            ("Ready".into(), "True".into(), None),
            ("PodScheduled".into(), "True".into(), None),
        ]
    );
    let ips: Vec<String> = st.pod_ips.unwrap().into_iter().map(|i| i.ip).collect();
    assert_eq!(ips, ["10.0.0.7", "fd00::7"]);
    assert_eq!(st.phase.as_deref(), Some("Running"));
    assert_eq!(st.container_statuses.unwrap().len(), 1);
    assert!(rv(&out) > rv(&created));
    assert_eq!(out.spec, created.spec);
    match next_event(&mut w).await {
        WatchEvent::Modified(p) => assert_eq!(rv(&p), rv(&out)),
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // An unchanged status writes nothing.
    let same = pods
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"uid": uid}, "status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    assert_eq!(rv(&same), rv(&out));

    // A recreated pod (another UID) refuses the patch.
    let stale = api_status(
        pods.patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"metadata": {"uid": "old-uid"}, "status": {"phase": "Failed"}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        stale.message,
        format!("Precondition failed: UID in precondition: old-uid, UID in object meta: {uid}")
    );

    // A JSON merge patch replaces lists.
    let merged = pods
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(merged.status.unwrap().conditions.unwrap().len(), 1);
    assert_eq!(
        server.pod("ns", "a").unwrap().metadata.resource_version,
        merged.metadata.resource_version
    );
}

#[tokio::test]
async fn graceful_delete_then_force() {
    let server = TestApiServer::start().await.unwrap();
    server.set_bookmark_period(None);
    let pods: Api<Pod> = Api::namespaced(client(&server), "ns");
    let mut p = pod("ns", "a", Some("node-a"), json!({}));
    p.spec.as_mut().unwrap().termination_grace_period_seconds = Some(45);
    let created = server.create_pod(p).unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    let mut w = open(&pods, &WatchParams::default(), &rv(&created).to_string()).await;

    let before = k8s_openapi::jiff::Timestamp::now();
    let answer = pods.delete("a", &DeleteParams::default()).await.unwrap();
    let deleting = answer.left().expect("the pod, not a Status");
    assert_eq!(deleting.metadata.deletion_grace_period_seconds, Some(45));
    let ts = deleting.metadata.deletion_timestamp.clone().unwrap().0;
    let secs = ts.duration_since(before).as_secs();
    assert!((44..=46).contains(&secs), "{secs}");
    assert_eq!(deleting.metadata.generation, Some(2));
    match next_event(&mut w).await {
        WatchEvent::Modified(p) => {
            assert_eq!(
                p.metadata.deletion_timestamp,
                deleting.metadata.deletion_timestamp
            );
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // A longer grace changes nothing; a wrong UID precondition is a conflict.
    let longer = DeleteParams {
        grace_period_seconds: Some(60),
        ..Default::default()
    };
    let again = pods.delete("a", &longer).await.unwrap().left().unwrap();
    assert_eq!(rv(&again), rv(&deleting));
    let wrong = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some("someone-else".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let conflict = api_status(pods.delete("a", &wrong).await.unwrap_err());
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(
        conflict
            .message
            .contains("the UID in the precondition (someone-else)")
    );

    // What the kubelet sends at the end: grace 0 with the UID.
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let gone = pods.delete("a", &force).await.unwrap().left().unwrap();
    assert_eq!(gone.metadata.uid.as_deref(), Some(uid.as_str()));
    let (t1, _, rv1) = summary(&next_event(&mut w).await);
    let (t2, _, rv2) = summary(&next_event(&mut w).await);
    assert_eq!((t1, t2), ("MODIFIED", "DELETED"));
    assert!(rv1 < rv2);
    assert_eq!(rv2, server.resource_version());
    assert!(server.pod("ns", "a").is_none());
    assert_eq!(api_status(pods.get("a").await.unwrap_err()).code, 404);

    // An unbound pod goes at once; so does a finished one.
    server
        .create_pod(pod("ns", "unbound", None, json!({})))
        .unwrap();
    server.delete_pod("ns", "unbound", None).unwrap();
    assert!(server.pod("ns", "unbound").is_none());
    let mut done = pod("ns", "done", Some("node-a"), json!({}));
    done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
    server.create_pod(done).unwrap();
    server.delete_pod("ns", "done", None).unwrap();
    assert!(server.pod("ns", "done").is_none());
    assert_eq!(
        api_status(
            pods.delete("done", &DeleteParams::default())
                .await
                .unwrap_err()
        )
        .code,
        404
    );
}

#[tokio::test]
async fn events_create_and_patch() {
    let server = TestApiServer::start().await.unwrap();
    let events: Api<Event> = Api::namespaced(client(&server), "ns");
    let ev: Event = Event {
        metadata: kube::core::ObjectMeta {
            name: Some("a.17f".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some("Pod".into()),
            name: Some("a".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        reason: Some("Pulling".into()),
        message: Some("Pulling image \"busybox\"".into()),
        count: Some(1),
        type_: Some("Normal".into()),
        ..Default::default()
    };
    let created = events.create(&PostParams::default(), &ev).await.unwrap();
    assert!(created.metadata.uid.is_some());
    let dup = api_status(
        events
            .create(&PostParams::default(), &ev)
            .await
            .unwrap_err(),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));

    let patched = events
        .patch(
            "a.17f",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "count": 2,
                "lastTimestamp": "2026-01-02T03:04:05Z",
                "message": "Pulling image \"busybox\" again",
            })),
        )
        .await
        .unwrap();
    assert_eq!(patched.count, Some(2));
    assert_eq!(patched.reason.as_deref(), Some("Pulling"));
    assert!(patched.last_timestamp.is_some());
    let listed = events
        .list(&ListParams::default().fields("involvedObject.name=a,reason=Pulling"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(server.events().len(), 1);
    assert_eq!(server.events()[0].count, Some(2));
    let missing = api_status(
        events
            .patch(
                "nope",
                &PatchParams::default(),
                &Patch::Merge(json!({"count": 3})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(missing.code, 404);
}

#[tokio::test]
async fn bad_input_gets_status_answers() {
    let server = TestApiServer::start().await.unwrap();
    server
        .create_pod(pod("ns", "a", Some("n"), json!({})))
        .unwrap();
    let c = client(&server);
    let send = |method: &str, uri: &str, ct: &str, body: &str| {
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", ct)
            .body(body.as_bytes().to_vec())
            .unwrap();
        let c = c.clone();
        async move {
            match c.request_text(req).await {
                Ok(_) => 200,
                Err(e) => api_status(e).code,
            }
        }
    };
    let json = "application/json";
    let smp = "application/strategic-merge-patch+json";
    let base = "/api/v1/namespaces/ns/pods";
    assert_eq!(send("POST", base, json, "{not json").await, 400);
    assert_eq!(send("POST", base, json, "[1,2]").await, 400);
    assert_eq!(send("POST", base, json, r#"{"metadata":{}}"#).await, 422);
    assert_eq!(
        send("GET", "/api/v1/pods?fieldSelector=%zz", json, "").await,
        400
    );
    assert_eq!(
        send("GET", "/api/v1/pods?fieldSelector=nodeName", json, "").await,
        400
    );
    assert_eq!(
        send("GET", "/api/v1/pods?labelSelector=a+in+b", json, "").await,
        400
    );
    assert_eq!(send("GET", "/api/v1/pods?watch=maybe", json, "").await, 400);
    assert_eq!(
        send("GET", "/api/v1/pods?watch=1&resourceVersion=abc", json, "").await,
        400
    );
    assert_eq!(
        send("GET", "/api/v1/pods?watch=1&timeoutSeconds=-1", json, "").await,
        400
    );
    assert_eq!(
        send("PATCH", &format!("{base}/a/status"), smp, "[1]").await,
        400
    );
    assert_eq!(
        send(
            "PATCH",
            &format!("{base}/a/status"),
            smp,
            r#"{"status":{"conditions":[{"status":"True"}]}}"#
        )
        .await,
        400
    );
    assert_eq!(
        send(
            "PATCH",
            &format!("{base}/a/status"),
            smp,
            r#"{"status":{"phase":7}}"#
        )
        .await,
        422
    );
    assert_eq!(
        send(
            "PATCH",
            &format!("{base}/a/status"),
            "application/json-patch+json",
            "[]"
        )
        .await,
        415
    );
    assert_eq!(
        send("PATCH", &format!("{base}/nope/status"), smp, "{}").await,
        404
    );
    assert_eq!(
        send(
            "DELETE",
            &format!("{base}/a"),
            json,
            r#"{"gracePeriodSeconds":"x"}"#
        )
        .await,
        400
    );
    assert_eq!(send("PUT", base, json, "{}").await, 405);
    assert_eq!(
        send("GET", "/api/v1/namespaces/ns/pods/a/logs", json, "").await,
        404
    );
    // Huge numbers are clamped, not overflowed.
    assert_eq!(
        send(
            "DELETE",
            &format!("{base}/a?gracePeriodSeconds=9223372036854775807"),
            json,
            ""
        )
        .await,
        200
    );
    assert!(
        server
            .pod("ns", "a")
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    assert_eq!(
        send(
            "DELETE",
            &format!("{base}/a"),
            json,
            r#"{"gracePeriodSeconds":-5}"#
        )
        .await,
        200
    );
    assert_eq!(
        server
            .pod("ns", "a")
            .unwrap()
            .metadata
            .deletion_grace_period_seconds,
        Some(1)
    );
    // Injected faults reach watches too.
    server.fail_next([500]);
    assert_eq!(send("GET", "/api/v1/pods?watch=1", json, "").await, 500);
}
