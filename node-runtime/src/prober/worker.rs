//! The pure half of a probe worker (`pkg/kubelet/prober/worker.go` `doProbe`): what one tick
//! does with what the worker sees of its container, and which probe results are published.
//! No clock, no runtime: the time is a parameter.

use std::time::{Duration, SystemTime};

use super::spec::{ProbeKind, ProbeSpec};

/// A published probe result (the kubelet's `results.Result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeResult {
    /// Not known yet (a startup probe's initial value).
    Unknown,
    /// The probe passed (enough times in a row).
    Success,
    /// The probe failed (enough times in a row), or the container is not running.
    Failure,
}

impl ProbeKind {
    /// The result published when a worker first sees a container: readiness `Failure`,
    /// liveness `Success`, startup `Unknown`.
    #[must_use]
    pub fn initial_result(self) -> ProbeResult {
        match self {
            Self::Readiness => ProbeResult::Failure,
            Self::Liveness => ProbeResult::Success,
            Self::Startup => ProbeResult::Unknown,
        }
    }
}

/// What a worker sees of its container and pod at a tick (the kubelet's cached pod status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickInput<'a> {
    /// The container's current runtime ID; `None` when it has none (not created yet).
    pub container_id: Option<&'a str>,
    /// The container is running.
    pub running: bool,
    /// When it started running (`state.running.startedAt`).
    pub running_since: Option<SystemTime>,
    /// The container will be started again if it exits (restart policy, sidecar).
    pub may_restart: bool,
    /// The container counts as started (startup probe passed or none).
    pub started: bool,
    /// The pod has a deletion timestamp.
    pub deleting: bool,
    /// The pod is `Succeeded` or `Failed`.
    pub terminal: bool,
}

/// What the worker does after a tick's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run the probe now and [`WorkerState::record`] its result.
    Probe,
    /// Nothing this tick; wait for the next one.
    Wait,
    /// Stop the worker for good.
    Exit,
}

/// The outcome of [`WorkerState::tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// A result to publish for the worker's current container (the last one set this tick).
    pub publish: Option<ProbeResult>,
    /// What to do next.
    pub action: Action,
}

/// The state a worker keeps between ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerState {
    kind: ProbeKind,
    initial_delay: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    container_id: Option<String>,
    last: Option<ProbeResult>,
    run: u32,
    on_hold: bool,
}

impl WorkerState {
    /// A worker for `spec` that has seen no container yet.
    #[must_use]
    pub fn new(spec: &ProbeSpec) -> Self {
        Self {
            kind: spec.kind,
            initial_delay: spec.initial_delay,
            success_threshold: spec.success_threshold.max(1),
            failure_threshold: spec.failure_threshold.max(1),
            container_id: None,
            last: None,
            run: 0,
            on_hold: false,
        }
    }

    /// The container the worker's results are about.
    #[must_use]
    pub fn container_id(&self) -> Option<&str> {
        self.container_id.as_deref()
    }

    /// The worker is on hold (after a published liveness failure or any startup result) until
    /// the container ID changes.
    #[must_use]
    pub fn on_hold(&self) -> bool {
        self.on_hold
    }

    /// One tick's decisions at wall-clock time `now` (the kubelet's `doProbe` up to running
    /// the probe).
    pub fn tick(&mut self, input: &TickInput<'_>, now: SystemTime) -> Tick {
        let mut publish = None;
        let done = |publish, action| Tick { publish, action };
        if input.terminal {
            return done(None, Action::Exit);
        }
        let Some(id) = input.container_id.filter(|id| !id.is_empty()) else {
            return done(None, Action::Wait);
        };
        if self.container_id.as_deref() != Some(id) {
            self.container_id = Some(id.to_owned());
            self.last = None;
            self.run = 0;
            self.on_hold = false;
            publish = Some(self.kind.initial_result());
        }
        if self.on_hold {
            return done(publish, Action::Wait);
        }
        if !input.running {
            let action = if input.may_restart {
                Action::Wait
            } else {
                Action::Exit
            };
            return done(Some(ProbeResult::Failure), action);
        }
        if input.deleting && self.kind != ProbeKind::Readiness {
            // Quiet shutdown: a pod being deleted is not restarted for a failed probe.
            return done(Some(ProbeResult::Success), Action::Exit);
        }
        if let Some(since) = input.running_since {
            // Whole seconds, as the kubelet's `int32(time.Since(startedAt).Seconds())`; a start
            // in the future (clock skew) is "not yet".
            match now.duration_since(since) {
                Ok(ran) if ran.as_secs() >= self.initial_delay.as_secs() => {}
                _ => return done(publish, Action::Wait),
            }
        }
        let gated = if input.started {
            self.kind == ProbeKind::Startup
        } else {
            self.kind != ProbeKind::Startup
        };
        if gated {
            return done(publish, Action::Wait);
        }
        done(publish, Action::Probe)
    }

    /// Counts a probe run's result (`None` for a probe *error*, which is thrown away) and
    /// returns the result to publish once a run of equal results reaches its threshold.
    pub fn record(&mut self, result: Option<ProbeResult>) -> Option<ProbeResult> {
        let result = result?;
        if self.last == Some(result) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(result);
            self.run = 1;
        }
        let below = match result {
            ProbeResult::Failure => self.run < self.failure_threshold,
            ProbeResult::Success => self.run < self.success_threshold,
            ProbeResult::Unknown => false,
        };
        if below {
            return None;
        }
        if (self.kind == ProbeKind::Liveness && result == ProbeResult::Failure)
            || self.kind == ProbeKind::Startup
        {
            // The container will be restarted (or has started): no more probes until a new
            // container shows up.
            self.on_hold = true;
            self.run = 0;
        }
        Some(result)
    }
}

/// How long a new worker waits before its first probe: a random part of the period if the
/// manager started less than one period ago (so probes after an agent restart do not all run
/// at once), else nothing. `random` is any random number.
#[must_use]
pub fn first_probe_delay(period: Duration, since_manager_start: Duration, random: u64) -> Duration {
    if since_manager_start >= period {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(random % nanos)
}

/// A cheap random number (the standard library's randomly keyed hasher over the clock), for
/// the start jitter; not for anything that needs unpredictability.
#[must_use]
pub fn cheap_random(salt: &str) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    salt.hash(&mut h);
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        .hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Probe;

    const T0: u64 = 1_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn worker(kind: ProbeKind, json: serde_json::Value) -> WorkerState {
        let mut probe = serde_json::json!({"tcpSocket": {"port": 80}});
        if let (Some(p), Some(extra)) = (probe.as_object_mut(), json.as_object()) {
            p.extend(extra.clone());
        }
        let probe: Probe = serde_json::from_value(probe).unwrap();
        WorkerState::new(&ProbeSpec::new(kind, &probe))
    }

    fn running(id: &str) -> TickInput<'_> {
        TickInput {
            container_id: Some(id),
            running: true,
            running_since: Some(at(0)),
            may_restart: true,
            started: true,
            deleting: false,
            terminal: false,
        }
    }

    fn tick(publish: Option<ProbeResult>, action: Action) -> Tick {
        Tick { publish, action }
    }

    use Action::{Exit, Probe as Run, Wait};
    use ProbeResult::{Failure, Success, Unknown};

    #[test]
    fn initial_results_on_a_new_container() {
        for (kind, initial) in [
            (ProbeKind::Readiness, Failure),
            (ProbeKind::Liveness, Success),
            (ProbeKind::Startup, Unknown),
        ] {
            let mut w = worker(kind, serde_json::json!({}));
            let input = TickInput {
                started: kind != ProbeKind::Startup,
                ..running("c1")
            };
            assert_eq!(w.tick(&input, at(5)), tick(Some(initial), Run), "{kind:?}");
            // The same container again: nothing new to publish.
            assert_eq!(w.tick(&input, at(15)), tick(None, Run), "{kind:?}");
            assert_eq!(w.container_id(), Some("c1"));
        }
    }

    #[test]
    fn no_container_id_waits_and_a_terminal_pod_exits() {
        let mut w = worker(ProbeKind::Readiness, serde_json::json!({}));
        let none = TickInput {
            container_id: None,
            ..running("x")
        };
        assert_eq!(w.tick(&none, at(1)), tick(None, Wait));
        let empty = TickInput {
            container_id: Some(""),
            ..running("x")
        };
        assert_eq!(w.tick(&empty, at(1)), tick(None, Wait));
        let terminal = TickInput {
            terminal: true,
            ..running("c1")
        };
        assert_eq!(w.tick(&terminal, at(1)), tick(None, Exit));
    }

    #[test]
    fn initial_delay_counts_from_running_since() {
        let mut w = worker(
            ProbeKind::Liveness,
            serde_json::json!({"initialDelaySeconds": 10}),
        );
        let input = running("c1");
        assert_eq!(w.tick(&input, at(0)), tick(Some(Success), Wait));
        // 9.9 s is 9 whole seconds.
        let almost = at(9) + Duration::from_millis(900);
        assert_eq!(w.tick(&input, almost), tick(None, Wait));
        assert_eq!(w.tick(&input, at(10)), tick(None, Run));
        // A start time in the future (clock skew) is not "long enough ago".
        let mut w = worker(
            ProbeKind::Liveness,
            serde_json::json!({"initialDelaySeconds": 1}),
        );
        let skewed = TickInput {
            running_since: Some(at(100)),
            ..running("c1")
        };
        assert_eq!(w.tick(&skewed, at(50)), tick(Some(Success), Wait));
    }

    #[test]
    fn startup_gates_the_other_probes() {
        let not_started = TickInput {
            started: false,
            ..running("c1")
        };
        let started = running("c1");
        let mut startup = worker(ProbeKind::Startup, serde_json::json!({}));
        let mut live = worker(ProbeKind::Liveness, serde_json::json!({}));
        let mut ready = worker(ProbeKind::Readiness, serde_json::json!({}));
        assert_eq!(startup.tick(&not_started, at(1)).action, Run);
        assert_eq!(live.tick(&not_started, at(1)).action, Wait);
        assert_eq!(ready.tick(&not_started, at(1)).action, Wait);
        assert_eq!(startup.tick(&started, at(2)).action, Wait);
        assert_eq!(live.tick(&started, at(2)).action, Run);
        assert_eq!(ready.tick(&started, at(2)).action, Run);
    }

    #[test]
    fn thresholds_need_a_run_of_equal_results() {
        let mut w = worker(
            ProbeKind::Readiness,
            serde_json::json!({"successThreshold": 2, "failureThreshold": 3}),
        );
        w.tick(&running("c1"), at(1));
        assert_eq!(w.record(Some(Success)), None);
        assert_eq!(w.record(Some(Success)), Some(Success));
        assert_eq!(w.record(Some(Success)), Some(Success));
        assert_eq!(w.record(Some(Failure)), None);
        assert_eq!(w.record(Some(Failure)), None);
        // A success breaks the run of failures.
        assert_eq!(w.record(Some(Success)), None);
        assert_eq!(w.record(Some(Failure)), None);
        assert_eq!(w.record(Some(Failure)), None);
        assert_eq!(w.record(Some(Failure)), Some(Failure));
        // Readiness never goes on hold.
        assert!(!w.on_hold());
        assert_eq!(w.record(Some(Failure)), Some(Failure));
    }

    #[test]
    fn probe_errors_are_thrown_away() {
        let mut w = worker(
            ProbeKind::Readiness,
            serde_json::json!({"failureThreshold": 2}),
        );
        w.tick(&running("c1"), at(1));
        assert_eq!(w.record(Some(Failure)), None);
        assert_eq!(w.record(None), None);
        // The error neither counted nor broke the run.
        assert_eq!(w.record(Some(Failure)), Some(Failure));
    }

    #[test]
    fn liveness_failure_holds_until_a_new_container() {
        let mut w = worker(
            ProbeKind::Liveness,
            serde_json::json!({"failureThreshold": 1}),
        );
        assert_eq!(w.tick(&running("c1"), at(1)), tick(Some(Success), Run));
        assert_eq!(w.record(Some(Failure)), Some(Failure));
        assert!(w.on_hold());
        assert_eq!(w.tick(&running("c1"), at(11)), tick(None, Wait));
        // The restarted container: initial result again, and probing resumes.
        assert_eq!(w.tick(&running("c2"), at(21)), tick(Some(Success), Run));
        assert!(!w.on_hold());
        // A liveness success does not hold.
        assert_eq!(w.record(Some(Success)), Some(Success));
        assert!(!w.on_hold());
    }

    #[test]
    fn any_startup_result_holds() {
        let not_started = TickInput {
            started: false,
            ..running("c1")
        };
        let mut w = worker(
            ProbeKind::Startup,
            serde_json::json!({"failureThreshold": 2}),
        );
        w.tick(&not_started, at(1));
        assert_eq!(w.record(Some(Failure)), None);
        assert!(!w.on_hold());
        assert_eq!(w.record(Some(Success)), Some(Success));
        assert!(w.on_hold());
        assert_eq!(w.tick(&not_started, at(2)), tick(None, Wait));
        let mut w = worker(
            ProbeKind::Startup,
            serde_json::json!({"failureThreshold": 1}),
        );
        w.tick(&not_started, at(1));
        assert_eq!(w.record(Some(Failure)), Some(Failure));
        assert!(w.on_hold());
        let next = TickInput {
            container_id: Some("c2"),
            ..not_started
        };
        assert_eq!(w.tick(&next, at(3)), tick(Some(Unknown), Run));
    }

    #[test]
    fn a_stopped_container_fails_and_stops_the_worker_unless_it_restarts() {
        let mut w = worker(ProbeKind::Readiness, serde_json::json!({}));
        assert_eq!(w.tick(&running("c1"), at(1)), tick(Some(Failure), Run));
        w.record(Some(Success));
        let exited = TickInput {
            running: false,
            ..running("c1")
        };
        assert_eq!(w.tick(&exited, at(2)), tick(Some(Failure), Wait));
        let for_good = TickInput {
            may_restart: false,
            ..exited
        };
        assert_eq!(w.tick(&for_good, at(3)), tick(Some(Failure), Exit));
        // A new, exited container: the last result set this tick wins.
        let mut w = worker(ProbeKind::Liveness, serde_json::json!({}));
        let new_exited = TickInput {
            running: false,
            ..running("c9")
        };
        assert_eq!(w.tick(&new_exited, at(1)), tick(Some(Failure), Wait));
    }

    #[test]
    fn a_deleted_pod_quiets_liveness_and_startup() {
        let deleting = TickInput {
            deleting: true,
            ..running("c1")
        };
        for kind in [ProbeKind::Liveness, ProbeKind::Startup] {
            let mut w = worker(kind, serde_json::json!({}));
            assert_eq!(
                w.tick(&deleting, at(1)),
                tick(Some(Success), Exit),
                "{kind:?}"
            );
        }
        let mut w = worker(ProbeKind::Readiness, serde_json::json!({}));
        assert_eq!(w.tick(&deleting, at(1)), tick(Some(Failure), Run));
    }

    #[test]
    fn jitter_only_right_after_the_manager_starts() {
        let period = Duration::from_secs(10);
        assert_eq!(
            first_probe_delay(period, Duration::from_secs(10), 7),
            Duration::ZERO
        );
        assert_eq!(
            first_probe_delay(period, Duration::from_secs(60), 7),
            Duration::ZERO
        );
        for r in [
            0,
            1,
            9_999_999_999,
            10_000_000_000,
            u64::MAX,
            cheap_random("x"),
        ] {
            let d = first_probe_delay(period, Duration::from_secs(1), r);
            assert!(d < period, "{d:?}");
        }
        assert_eq!(
            first_probe_delay(period, Duration::ZERO, 10_000_000_001),
            Duration::from_nanos(1)
        );
    }
}
