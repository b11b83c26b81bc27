//! The agent's life: startup in the kubelet's order, each step with its own fatal error, then
//! the loops, then a graceful stop.
//!
//! config → lock file → preflight → root dir layout → state restore → container runtime →
//! servers (HTTPS API, healthz, pod-resources, device-plugin registration, plugins_registry
//! watcher) → pod sync → heartbeat → READY=1 → watchdog. SIGTERM or SIGINT: stop admitting,
//! stop pods per the graceful shutdown settings, write `graceful_node_shutdown_state`,
//! STOPPING=1, keep renewing the lease until the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use node_config::{FeatureGates, KubeletConfiguration, KubeletFlags, LoadedConfig, Loader};
use node_heartbeat::{
    AddressInputs, KubeBackend, LeaseConfig, Notifier, RuntimeHealth, SharedInputs, StatusConfig,
    Watchdog, dns_lookup, inputs_for_root, node_addresses,
};
use node_kernel::HostRoot;
use node_runtime::{
    ClientOptions, CriClient, NodePaths, PodManager, RuntimeWatch, StaticPodSource, SyncOptions,
};
use node_state::{GracefulShutdownState, LockFile};
use tokio::sync::watch;

use crate::api::{self, ApiState};
use crate::cli::Cli;
use crate::error::AgentError;
use crate::metrics::Metrics;
use crate::stop::{StopReason, wait_for_stop};
use node_runtime::shutdown::{self, ShutdownPlan};
use node_state::layout::Layout;
use node_util::stopped;

/// How long the runtime may take to answer `Version` at startup before it counts as
/// unreachable.
const RUNTIME_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the runtime's `Status` feeds the Ready condition (the kubelet's `updateRuntimeUp`).
const RUNTIME_STATUS_PERIOD: Duration = Duration::from_secs(5);
/// The heartbeat client's request timeout: min(10 s, lease duration).
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the agent until a signal (or lock contention) ends it.
pub async fn run(cli: Cli) -> Result<(), AgentError> {
    let started = Instant::now();

    // 1. Configuration.
    let loaded = load_config(&cli)?;
    let cfg = Arc::new(loaded.config.clone());
    let flags = loaded.flags.clone();
    let hostname = node_heartbeat::hostname(flags.hostname_override.as_deref())
        .map_err(|e| AgentError::Preflight(node_util::error_chain(&e)))?;
    // Without a cloud provider the node name is the host name.
    let node_name = hostname.clone();
    node_heartbeat::validate_node_labels(&flags.node_labels)
        .map_err(|e| AgentError::Preflight(format!("failed to validate kubelet flags: {e}")))?;
    // The sysctl allowlist for pod admission: an invalid allowedUnsafeSysctls entry stops the
    // agent before anything happens.
    let sysctls =
        node_kernel::SysctlPolicy::for_host(&HostRoot::live(), &cfg.allowed_unsafe_sysctls)
            .map_err(AgentError::Sysctls)?;
    tracing::info!(node = %node_name, sources = ?loaded.sources, "configuration loaded");
    // One warning naming every field set that the agent accepts without acting on.
    match node_config::support::not_acted_on_warning(&cfg) {
        Ok(Some(warning)) => tracing::warn!("{warning}"),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %node_util::error_chain(&e), "cannot compare the configuration with the defaults")
        }
    }
    // The API server client is built from --kubeconfig now (no request is made yet), so a
    // missing or broken kubeconfig stops the agent before anything else happens.
    let kube = match &flags.kubeconfig {
        Some(path) => Some(kube_clients(path).await?),
        None => None,
    };
    // A misconfigured watchdog is fatal early, as in the kubelet.
    let watchdog = Watchdog::from_env().map_err(AgentError::Watchdog)?;

    // 2. Lock file.
    node_state::check_lock_flags(flags.lock_file.as_deref(), flags.exit_on_lock_contention)
        .map_err(AgentError::LockFlags)?;
    let lock = match &flags.lock_file {
        Some(path) => Some(acquire_lock(path).await?),
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let contention = match (&lock, flags.exit_on_lock_contention) {
        (Some(lock), true) => Some(watch_contention(lock.path())?),
        _ => None,
    };

    // 3. Preflight.
    let requirements = node_kernel::StartupRequirements::default()
        .with_fail_swap_on(cfg.fail_swap_on.unwrap_or(true))
        .with_fail_cgroup_v1(cfg.fail_cgroup_v1.unwrap_or(true))
        .with_swap_behavior(cfg.memory_swap.swap_behavior.clone());
    let swap_policy = node_kernel::check_startup(&HostRoot::live(), &requirements)
        .map_err(|e| AgentError::Preflight(e.to_string()))?;

    // 4. Root directory layout.
    let layout = layout(&cfg, &flags, &loaded.feature_gates)?;
    layout.create().map_err(AgentError::State)?;

    // 5. State restore.
    let restored = node_state::restore::restore(
        &layout.root,
        &cfg.cpu_manager_policy,
        &cfg.memory_manager_policy,
    )
    .map_err(AgentError::State)?;
    if restored.removed_temps > 0 {
        tracing::info!(
            removed = restored.removed_temps,
            "removed temp files left by an interrupted state write"
        );
    }
    tracing::info!(
        cpu_manager_state = if restored.cpu_state_reused {
            "restored"
        } else {
            "created"
        },
        memory_manager_state = if restored.memory_state_reused {
            "restored"
        } else {
            "created"
        },
        "state restored"
    );
    let pod_metrics = node_runtime::metrics::PodMetrics::default();
    if restored.previous_shutdown != GracefulShutdownState::default() {
        let (start, end) = (
            restored.previous_shutdown.start_time.unix_secs(),
            restored.previous_shutdown.end_time.unix_secs(),
        );
        pod_metrics.record_shutdown(start, end);
        tracing::info!(start, end, "previous graceful node shutdown recorded");
    }

    // The container runtime: everything below needs it.
    let runtime = connect_runtime(&cfg).await?;
    let version = runtime.version().clone();
    tracing::info!(
        runtime = %version.runtime_name,
        version = %version.runtime_version,
        api = %version.runtime_api_version,
        "container runtime connected"
    );

    // 6. Servers.
    let devices = node_plugins::DeviceManager::new(node_plugins::DeviceManagerOptions::new(
        layout.device_plugins(),
    ));
    let device_registration = devices.start().map_err(|e| AgentError::Server {
        what: "device plugin registration server",
        message: node_util::error_chain(&e),
    })?;
    // The pod manager is built now (it has no side effects until it runs) so the servers can
    // share its registry; it starts syncing after the servers are up.
    let static_pod_path = cfg.static_pod_path.clone();
    if static_pod_path.is_empty() && kube.is_none() {
        tracing::info!("no staticPodPath and no --kubeconfig: this agent runs no pods");
    }
    let node_ips = node_heartbeat::parse_node_ips(flags.node_ip.as_deref().unwrap_or_default())
        .map_err(|e| AgentError::Preflight(e.to_string()))?;
    let overridden = flags
        .hostname_override
        .as_ref()
        .is_some_and(|h| !h.is_empty());
    let inputs = AddressInputs::probe(
        Path::new("/"),
        &node_name,
        &hostname,
        overridden,
        node_ips.clone(),
    );
    let addresses =
        node_addresses(&inputs, &dns_lookup).map_err(|e| AgentError::Preflight(e.to_string()))?;
    let host_ip = addresses
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone());
    let mut options = SyncOptions::new(
        node_name.clone(),
        NodePaths {
            root_dir: layout.root.clone(),
            pod_logs_dir: layout.pod_logs.clone(),
        },
    );
    // Pod DNS (clusterDNS, clusterDomain, resolvConf); with resolvConf "", each --node-ip
    // gives a loopback resolver of its family (the kubelet's nodeIPs).
    options.dns = node_runtime::network::DnsSettings::from_config(
        &cfg.cluster_dns,
        &cfg.cluster_domain,
        cfg.resolv_conf.as_deref(),
        node_ips,
    )
    .map_err(AgentError::Preflight)?;
    options.host_ips = addresses
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
        .collect();
    // The configMaps, secrets, services and tokens pods reference, from the API server under
    // configMapAndSecretChangeDetectionStrategy.
    if let Some((client, _)) = &kube {
        let strategy = node_cluster::ChangeDetection::from_config(
            &cfg.config_map_and_secret_change_detection_strategy,
        )
        .map_err(|e| AgentError::Preflight(node_util::error_chain(&e)))?;
        let mut object_options = node_cluster::ObjectOptions::new(strategy);
        object_options.sync_frequency = cfg.sync_frequency.to_std();
        options.objects = Some(node_runtime::ObjectSourceRef(Arc::new(
            node_cluster::ApiObjects::new(client.clone(), object_options),
        )));
    }
    options.seccomp_default = cfg.seccomp_default.unwrap_or(false);
    options.sysctl_policy = Some(sysctls);
    options.swap = Some(swap_policy);
    // Admission sees the node as the heartbeat reports it: allocatable, the labels it
    // registers (defaults and --node-labels; labels added on the API server are not seen) and
    // its registration taints. The inputs are built at the heartbeat step: static pods
    // admitted by the passes before that are not checked (API pods arrive after it).
    let admission_inputs: Arc<std::sync::OnceLock<SharedInputs>> = Arc::default();
    options.node_info = Some(node_runtime::NodeInfoFn::new({
        let (cell, name) = (admission_inputs.clone(), node_name.clone());
        move || {
            let shared = cell.get()?;
            Some(node_runtime::admission::AdmissionNode {
                name: name.clone(),
                labels: node_heartbeat::default_labels(&shared.hostname, &shared.node_labels),
                taints: shared.taints.clone(),
                allocatable: shared.update(|i| node_heartbeat::admission_allocatable(i))?,
                pressure: shared.update(|i| {
                    [
                        (i.pressure.memory, "MemoryPressure"),
                        (i.pressure.disk, "DiskPressure"),
                        (i.pressure.pid, "PIDPressure"),
                    ]
                    .into_iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, name)| name.to_owned())
                    .collect()
                }),
            })
        }
    }));
    if let Some(max) = cfg.crash_loop_back_off.max_container_restart_period {
        // As the kubelet: a cap below the first back-off lowers that too.
        options.backoff_max = max.to_std();
        options.backoff_initial = options.backoff_initial.min(options.backoff_max);
    }
    let manager = PodManager::new(
        runtime.clone(),
        StaticPodSource::new(&static_pod_path, node_name.clone()),
        options,
    )
    .with_container_hook(Arc::new(node_plugins::DeviceAllocator::new(
        devices.clone(),
    )));
    // With an API server, the pods it binds to this node run beside the static pods.
    let api_pods = kube
        .as_ref()
        .map(|_| node_runtime::ApiPods::new(node_name.clone()));
    let manager = match &api_pods {
        Some(pods) => manager.with_api_pods(pods.clone()),
        None => manager,
    };
    let registry = manager.registry();
    let metrics = Arc::new(Metrics::new(&node_name, &pod_metrics, registry.clone()));
    let api_state = ApiState {
        node_name: node_name.clone(),
        registry: registry.clone(),
        metrics: metrics.clone(),
        config: cfg.clone(),
        host_ip: host_ip.clone(),
        sync_health: Arc::new(node_runtime::sync_loop::SyncHealth::default()),
        sync_threshold: node_runtime::sync_loop::health_threshold(cfg.sync_frequency.to_std()),
        pod_api: node_api::PodApi::new(
            node_name.clone(),
            registry.clone(),
            runtime.clone(),
            NodePaths {
                root_dir: layout.root.clone(),
                pod_logs_dir: layout.pod_logs.clone(),
            },
        )
        .with_probe_metrics(manager.prober().metrics())
        .with_split_log_streams(loaded.feature_gates.enabled("PodLogsQuerySplitStreams"))
        .with_debugging_handlers(cfg.enable_debugging_handlers.unwrap_or(true))
        .with_system_logs(
            cfg.enable_system_log_handler
                .unwrap_or(true)
                .then(|| node_api::node_logs::SYSTEM_LOG_DIR.into()),
        ),
    };
    let servers = api::start_servers(
        &cfg,
        &layout,
        &loaded.feature_gates,
        &api_state,
        kube.as_ref().map(|(client, _)| client.clone()),
        &node_heartbeat::address_ips(&addresses),
        stop_rx.clone(),
    )
    .await?;
    let pod_resources = node_plugins::PodResourcesServer::new(
        registry.clone(),
        devices.clone(),
        node_plugins::PodResourcesOptions::default(),
    )
    .serve(&node_plugins::pod_resources_socket(&layout.root))
    .map_err(|e| AgentError::Server {
        what: "pod resources server",
        message: node_util::error_chain(&e),
    })?;
    let watcher = start_plugin_watcher(&layout, &devices)?;

    // The cluster side's tasks stop last (with the heartbeat), so statuses, events and final
    // deletes go on while the pods stop.
    let (heartbeat_stop_tx, heartbeat_stop_rx) = watch::channel(false);
    let recorder = kube.as_ref().map(|(client, _)| {
        let (sink, recorder) = node_cluster::recorder(client.clone(), node_name.clone());
        (sink, tokio::spawn(recorder.run(heartbeat_stop_rx.clone())))
    });

    // 7. Pod sync.
    let sync_task = {
        let (metrics, health, stop) = (
            pod_metrics.clone(),
            api_state.sync_health.clone(),
            stop_rx.clone(),
        );
        let timing = node_runtime::sync_loop::Timing::new(PathBuf::from(&static_pod_path))
            .with_file_check(cfg.file_check_frequency.to_std())
            .with_resync(cfg.sync_frequency.to_std());
        let events = RuntimeWatch::start(&runtime);
        let sink = recorder.as_ref().map(|(sink, _)| sink.clone());
        let on_pass = move |report: &node_runtime::SyncReport, took: Duration| {
            metrics.record_pass(report, took);
            if let Some(sink) = &sink {
                sink.record(&report.events);
            }
        };
        tokio::spawn(node_runtime::sync_loop::run(
            manager, events, timing, on_pass, health, stop,
        ))
    };
    // Container log rotation (containerLogMaxSize, ...), stopped with the pods' loops.
    let log_rotation = node_runtime::log_rotation::RotationPolicy::from_config(&cfg)
        .map_err(|e| AgentError::Preflight(e.to_string()))?;
    tokio::spawn(node_runtime::log_rotation::run(
        runtime.clone(),
        log_rotation,
        layout.pod_logs.clone(),
        stop_rx.clone(),
    ));

    // 8. Heartbeat.
    let mut inputs = inputs_for_root(Path::new("/"), &layout.root, &node_name, &cfg)
        .map_err(AgentError::Status)?;
    inputs.addresses = addresses;
    inputs.kubelet_port = cfg.port;
    inputs.runtime_version = Some(node_heartbeat::RuntimeVersion {
        name: version.runtime_name.clone(),
        version: version.runtime_version.clone(),
    });
    inputs.runtime_health = RuntimeHealth::healthy(Instant::now());
    let eviction_hard = inputs.reservations.eviction_hard.clone();
    let mut shared = SharedInputs::new(inputs, hostname.clone());
    shared.node_labels = flags.node_labels.clone();
    shared.taints = node_heartbeat::registration_taints(&cfg.register_with_taints, true);
    let _ = admission_inputs.set(shared.clone());
    // Standalone (no --kubeconfig), as a kubelet without an API server: no Node object to keep
    // up to date, no lease. (node-heartbeat's StandaloneBackend serves embedders that want the
    // status computed locally; `nodectl node-status` shows it.)
    let heartbeat = kube.as_ref().map(|(_, backend)| {
        node_heartbeat::Heartbeat::start(
            backend.clone(),
            shared.clone(),
            StatusConfig::from_kubelet_config(&node_name, &cfg),
            LeaseConfig::from_kubelet_config(&node_name, &cfg),
            &heartbeat_stop_rx,
        )
    });
    if heartbeat.is_none() {
        tracing::info!("standalone mode (no --kubeconfig): node status and lease are not reported");
    }
    // The pod CIDR goes to the runtime (CRI UpdateRuntimeConfig): the Node's spec.podCIDRs in
    // a cluster, the configuration's podCIDR standalone (the field's documented use).
    let pod_cidr_task = {
        let mut cidrs = match &heartbeat {
            Some(h) => h.pod_cidr(),
            None => watch::channel(cfg.pod_cidr.clone()).1,
        };
        let (runtime, mut stop) = (runtime.clone(), heartbeat_stop_rx.clone());
        tokio::spawn(async move {
            let (mut sender_alive, mut applied) = (true, String::new());
            loop {
                let cidr = cidrs.borrow_and_update().clone();
                let mut retry = false;
                if !cidr.is_empty() && cidr != applied {
                    match runtime.update_pod_cidr(&cidr).await {
                        Ok(()) => {
                            tracing::info!(pod_cidr = %cidr, "updated the runtime's pod CIDR");
                            applied = cidr;
                        }
                        Err(e) => {
                            // Retried, as the kubelet retries on its next status update.
                            tracing::warn!(pod_cidr = %cidr, error = %node_util::error_chain(&e), "failed to update the runtime's pod CIDR");
                            retry = true;
                        }
                    }
                }
                tokio::select! {
                    r = cidrs.changed(), if sender_alive => sender_alive = r.is_ok(),
                    () = tokio::time::sleep(Duration::from_secs(10)), if retry => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        })
    };
    // The API server's pods: listed and watched into the pod manager's source, their status
    // (and the static pods', through their mirror pods) sent back, their deletions finished.
    let cluster_tasks: Vec<tokio::task::JoinHandle<()>> = match (&kube, &api_pods) {
        (Some((client, _)), Some(pods)) => vec![
            tokio::spawn(
                node_cluster::PodWatcher::new(client.clone(), node_name.clone(), pods.clone())
                    .run(heartbeat_stop_rx.clone()),
            ),
            tokio::spawn(
                node_cluster::StatusManager::new(
                    client.clone(),
                    node_name.clone(),
                    registry.clone(),
                    pods.clone(),
                    node_cluster::node_host_ips(&shared.update(|i| i.addresses.clone())),
                )
                .run(heartbeat_stop_rx.clone()),
            ),
            tokio::spawn(
                node_cluster::MirrorPods::new(
                    client.clone(),
                    node_name.clone(),
                    registry.clone(),
                    pods.clone(),
                )
                .run(heartbeat_stop_rx.clone()),
            ),
        ],
        _ => Vec::new(),
    };
    // The runtime's health (always: it also tells the sync loop's health check that a long
    // pass is making progress) and the device plugins' resources feed the Node's status; the
    // eviction signals (MemoryPressure, DiskPressure, PIDPressure against `evictionHard`,
    // every 10 s as the kubelet's eviction manager observes them) only with an API server to
    // report them to.
    let runtime_health = tokio::spawn(runtime_health_loop(
        runtime.clone(),
        shared.clone(),
        devices.clone(),
        api_state.sync_health.clone(),
        stop_rx.clone(),
    ));
    let pressure = kube.is_some().then(|| {
        let sources = node_heartbeat::SignalSources {
            root: PathBuf::from("/"),
            nodefs: layout.root.clone(),
            imagefs: None,
        };
        let tracker = node_heartbeat::PressureTracker::new(
            eviction_hard,
            cfg.eviction_pressure_transition_period.to_std(),
        );
        tokio::spawn(node_heartbeat::run_pressure_monitor(
            sources,
            tracker,
            shared.clone(),
            node_heartbeat::EVICTION_MONITORING_PERIOD,
            stopped(stop_rx.clone()),
        ))
    });

    // 9. READY=1, then 10. the watchdog.
    let notifier = Notifier::from_env().ok();
    if let Some(Err(e)) = notifier.as_ref().map(Notifier::ready) {
        tracing::warn!(error = %e, "sd_notify READY=1 failed");
    }
    metrics.record_startup(started.elapsed());
    tracing::info!(
        took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        https = ?servers.https_addr,
        healthz = ?servers.healthz_addr,
        "node agent started"
    );
    let watchdog_task = watchdog.map(|mut w| {
        let health = api_state.sync_health.clone();
        let threshold = api_state.sync_threshold;
        w.add_check(Arc::new(("syncloop".to_owned(), move || {
            health.check(threshold)
        })));
        tracing::info!(interval = ?w.interval(), "Starting systemd watchdog with interval");
        tokio::spawn(w.run(stopped(stop_rx.clone())))
    });

    // Run until told to stop.
    let reason = wait_for_stop(contention).await;
    tracing::info!(reason = reason.describe(), "stopping");
    if let Some(Err(e)) = notifier.as_ref().map(Notifier::stopping) {
        tracing::warn!(error = %e, "sd_notify STOPPING=1 failed");
    }
    shared.update(|i| {
        i.runtime_health
            .shutdown_errors
            .push("node is shutting down".to_owned());
    });
    // Reported at once, as the kubelet's shutdown manager does, not at the next tick.
    if let Some(h) = &heartbeat {
        h.sync_now();
    }
    // Stop admitting: the sync loop ends first, so nothing new starts while pods stop.
    let _ = stop_tx.send(true);
    let manager = match sync_task.await {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!(error = %e, "pod sync task failed");
            None
        }
    };
    if reason == StopReason::Signal {
        let plan = ShutdownPlan::new(
            cfg.shutdown_grace_period.to_std(),
            cfg.shutdown_grace_period_critical_pods.to_std(),
            &cfg.shutdown_grace_period_by_pod_priority,
        );
        let state_path = layout
            .root
            .join(node_state::shutdown::GRACEFUL_NODE_SHUTDOWN_STATE_FILE);
        if let Some(mut manager) = manager {
            shutdown::run(&plan, &mut manager, &registry, &node_name, &state_path).await;
        }
    }
    // Everything else stops; the lease keeps being renewed until here.
    for task in std::iter::once(runtime_health).chain(pressure) {
        let _ = task.await;
    }
    if let Some(t) = watchdog_task {
        let _ = t.await;
    }
    servers.wait().await;
    let _ = pod_resources.stop().await;
    watcher.abort();
    let _ = device_registration.stop().await;
    devices.shutdown();
    let _ = heartbeat_stop_tx.send(true);
    if let Some(heartbeat) = heartbeat {
        heartbeat.wait().await;
    }
    pod_cidr_task.abort();
    for task in cluster_tasks
        .into_iter()
        .chain(recorder.map(|(_, task)| task))
    {
        let _ = task.await;
    }
    drop(lock);
    tracing::info!("node agent stopped");
    Ok(())
}

fn load_config(cli: &Cli) -> Result<LoadedConfig, AgentError> {
    let mut loader = Loader::new().flags(cli.kubelet.to_overrides()?);
    if let Some(path) = &cli.config {
        loader = loader.config_file(path);
    }
    if let Some(dir) = &cli.config_dir {
        loader = loader.config_dir(dir);
    }
    let loaded = loader.load()?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded)
}

async fn acquire_lock(path: &Path) -> Result<LockFile, AgentError> {
    match LockFile::try_acquire(path) {
        Ok(lock) => Ok(lock),
        Err(first) => {
            tracing::info!(path = %path.display(), reason = %first, "waiting for the lock file");
            let owned = path.to_path_buf();
            tokio::task::spawn_blocking(move || LockFile::acquire(&owned))
                .await
                .map_err(|e| AgentError::Lock {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
                .map_err(|e| AgentError::Lock {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })
        }
    }
}

fn watch_contention(path: &Path) -> Result<tokio::task::JoinHandle<()>, AgentError> {
    tracing::info!(path = %path.display(), "watching for inotify events on the lock file");
    let watch = node_state::watch_for_contention(path).map_err(|e| AgentError::Lock {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(tokio::task::spawn_blocking(move || match watch.wait() {
        Ok(event) => tracing::info!(?event, "lock file contention"),
        Err(e) => tracing::error!(error = %e, "watching the lock file failed"),
    }))
}

fn layout(
    cfg: &KubeletConfiguration,
    flags: &KubeletFlags,
    gates: &FeatureGates,
) -> Result<Layout, AgentError> {
    let cert_dir = (flags.cert_dir != Path::new(node_config::DEFAULT_CERT_DIR))
        .then_some(flags.cert_dir.as_path());
    Layout::new(
        &flags.root_dir,
        cert_dir,
        Path::new(&cfg.pod_logs_dir),
        gates.enabled("ContainerCheckpoint"),
    )
    .map_err(AgentError::State)
}

async fn connect_runtime(cfg: &KubeletConfiguration) -> Result<CriClient, AgentError> {
    let options = ClientOptions::default()
        .with_connect_timeout(RUNTIME_CONNECT_TIMEOUT)
        .with_request_timeout(cfg.runtime_request_timeout.to_std());
    // `imageServiceEndpoint`: a second connection for the ImageService when it names another
    // socket; empty means the runtime's (pkg/kubelet/kubelet.go PreInitRuntimeService).
    let image_endpoint = Some(cfg.image_service_endpoint.as_str()).filter(|e| !e.is_empty());
    CriClient::connect_with_image_endpoint(
        &cfg.container_runtime_endpoint,
        image_endpoint,
        &options,
    )
    .await
    .map_err(|e| match e {
        node_runtime::RuntimeError::ImageService { endpoint, reason } => AgentError::Runtime {
            api: "image",
            endpoint,
            message: reason,
        },
        e => AgentError::Runtime {
            api: "runtime",
            endpoint: cfg.container_runtime_endpoint.clone(),
            message: node_util::error_chain(&e),
        },
    })
}

/// How often the plugins_registry tree is rescanned on top of change notifications for the
/// directory itself (sockets in subdirectories are found by the rescan).
const PLUGIN_RESCAN: Duration = Duration::from_secs(5);

/// The plugins_registry watcher (node-plugins): registration starts as soon as a socket
/// appears in the directory, and a periodic rescan covers subdirectories and retries.
fn start_plugin_watcher(
    layout: &Layout,
    devices: &node_plugins::DeviceManager,
) -> Result<tokio::task::JoinHandle<()>, AgentError> {
    let mut options = node_plugins::RegistryOptions::new(&layout.root);
    options.interval = PLUGIN_RESCAN;
    node_plugins::PluginWatcher::new(options, devices.clone())
        .start()
        .map_err(|e| AgentError::Server {
            what: "plugins_registry watcher",
            message: node_util::error_chain(&e),
        })
}

/// The API server clients of `--kubeconfig`: one for the agent's API checks (webhook
/// authentication and authorization) and the heartbeat's, with its own timeouts and pool.
async fn kube_clients(path: &Path) -> Result<(kube::Client, Arc<KubeBackend>), AgentError> {
    let fail = |message: String| AgentError::Kubeconfig {
        path: path.to_path_buf(),
        message,
    };
    let config = node_heartbeat::load_kubeconfig(path)
        .await
        .map_err(|e| fail(node_util::error_chain(&e)))?;
    // No retry layer: node-cluster's watchers, status manager and recorder back off on their
    // own (as client-go's reflector); kube's default retries 429/503/504 up to 15 times with an
    // exponential back-off, which held a 504 "too large resource version" watch for 7 minutes
    // before the relist.
    let mut cluster_config = config.clone();
    cluster_config.default_retry = false;
    let client = kube::Client::try_from(cluster_config).map_err(|e| fail(e.to_string()))?;
    let backend = KubeBackend::from_config(config, HEARTBEAT_TIMEOUT)
        .map_err(|e| fail(node_util::error_chain(&e)))?;
    Ok((client, Arc::new(backend)))
}

/// Feeds the Ready condition (the runtime's `Status` and the device plugins' capacity) and the
/// sync loop's health (when the runtime last answered).
async fn runtime_health_loop(
    runtime: CriClient,
    shared: SharedInputs,
    devices: node_plugins::DeviceManager,
    sync_health: Arc<node_runtime::sync_loop::SyncHealth>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match runtime.runtime_not_ready().await {
            Ok(not_ready) => {
                sync_health
                    .runtime_ok
                    .store(node_runtime::sync_loop::now_millis(), Ordering::Relaxed);
                shared.runtime_answered(Instant::now(), not_ready);
            }
            Err(e) => {
                tracing::warn!(error = %node_util::error_chain(&e), "container runtime status check failed");
            }
        }
        let capacity = devices.capacity();
        shared.update(|i| {
            i.capacity.set_device_resources(
                &capacity.capacity,
                &capacity.allocatable,
                &capacity.deleted,
            );
        });
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(RUNTIME_STATUS_PERIOD) => {}
        }
    }
}
