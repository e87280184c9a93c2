//! `flink-operator run`: webhook, controllers and admin server in one runtime, one shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::OperatorConfig;
use crate::controller::{self, Namespaces};
use crate::leader;
use crate::server::{self, Limits};
use crate::telemetry::{LogFormat, admin, health::Health, metrics::Metrics};
use crate::webhook::{self, WebhookState, self_managed, tls};

/// Upstream's option for how often resources are reconciled without events.
const RECONCILE_INTERVAL: &str = "kubernetes.operator.reconcile.interval";
/// Readiness gate open once every part of the process is set up (see `run`).
const STARTUP_GATE: &str = "startup";

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::flink_config::parse_duration(text)
}

/// Options of `flink-operator run`; each is also read from `FLINK_OPERATOR_<FLAG>`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunOptions {
    /// Address of the TLS admission webhook.
    #[arg(long, env = "FLINK_OPERATOR_WEBHOOK_ADDR", default_value = "0.0.0.0:9443")]
    pub webhook_addr: SocketAddr,
    /// PEM certificate (chain) the webhook serves; reloaded when it changes.
    #[arg(long, env = "FLINK_OPERATOR_TLS_CERT_FILE", required_unless_present = "no_webhook")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the webhook certificate.
    #[arg(long, env = "FLINK_OPERATOR_TLS_KEY_FILE", required_unless_present = "no_webhook")]
    pub tls_key_file: Option<PathBuf>,
    /// How often the certificate files are checked for changes.
    #[arg(long, env = "FLINK_OPERATOR_TLS_RELOAD_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub tls_reload_interval: Duration,
    /// Address of the plain-HTTP admin server (/healthz, /readyz, /metrics).
    #[arg(long, env = "FLINK_OPERATOR_ADMIN_ADDR", default_value = "0.0.0.0:8085")]
    pub admin_addr: SocketAddr,
    /// Serve the webhook and admin server only (no cluster needed).
    #[arg(long, env = "FLINK_OPERATOR_NO_CONTROLLER")]
    pub no_controller: bool,
    /// Do not serve the admission webhook (validation then happens in the controller).
    #[arg(long, env = "FLINK_OPERATOR_NO_WEBHOOK")]
    pub no_webhook: bool,
    /// Namespaces to watch, comma-separated (default: all).
    #[arg(long, env = "FLINK_OPERATOR_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,
    /// Operator defaults: a YAML map of `kubernetes.operator.*` options and default Flink configuration.
    #[arg(long, env = "FLINK_OPERATOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// REST address of a Flink cluster: `{name}`, `{namespace}` and `{port}` are filled in. The default is the
    /// cluster's REST Service in-cluster; an operator running elsewhere can point it at a port-forward or proxy.
    #[arg(long, env = "FLINK_OPERATOR_FLINK_REST_URL", default_value = crate::flink::DEFAULT_REST_URL_TEMPLATE)]
    pub flink_rest_url: String,
    /// Time limit of one call to a Flink REST endpoint.
    #[arg(long, env = "FLINK_OPERATOR_FLINK_REST_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub flink_rest_timeout: Duration,
    /// Extra CA certificates (PEM) trusted when fetching `https://` jarURIs of FlinkSessionJobs, besides the
    /// system's (`SSL_CERT_FILE` / `SSL_CERT_DIR` also work).
    #[arg(long, env = "FLINK_OPERATOR_JAR_CA_FILE")]
    pub jar_ca_file: Option<PathBuf>,
    /// Time limit for fetching a FlinkSessionJob's jar over HTTP(S).
    #[arg(long, env = "FLINK_OPERATOR_JAR_FETCH_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub jar_fetch_timeout: Duration,
    /// Log format.
    #[arg(long, env = "FLINK_OPERATOR_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Largest admission request body accepted, in bytes.
    #[arg(long, env = "FLINK_OPERATOR_WEBHOOK_BODY_LIMIT", default_value_t = webhook::DEFAULT_BODY_LIMIT)]
    pub webhook_body_limit: usize,
    /// Time limit for one admission request, and for a client to send its headers.
    #[arg(long, env = "FLINK_OPERATOR_WEBHOOK_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhook_request_timeout: Duration,
    /// Time open connections get to finish on shutdown.
    #[arg(long, env = "FLINK_OPERATOR_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Worker threads of the async runtime. The operator waits on the network nearly all the time; one
    /// worker spares the wake-ups between threads, about a tenth of its CPU (BENCHMARKS.md). More help only a
    /// webhook under heavy concurrent load, and only with as many cores to run them.
    #[arg(long, env = "FLINK_OPERATOR_WORKER_THREADS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: u16,
    #[command(flatten)]
    pub self_managed: SelfManagedOptions,
    #[command(flatten)]
    pub leader_election: LeaderElectionOptions,
}

/// Leader election: with several replicas, only the holder of a Lease runs the controllers.
#[derive(Clone, Debug, clap::Args)]
pub struct LeaderElectionOptions {
    /// Run the controllers only while this process holds the Lease (the webhook and admin server run on
    /// every replica).
    #[arg(long, env = "FLINK_OPERATOR_LEADER_ELECTION", conflicts_with = "no_controller")]
    pub leader_election: bool,
    /// Name of the Lease (coordination.k8s.io/v1).
    #[arg(long, env = "FLINK_OPERATOR_LEADER_ELECTION_LEASE_NAME", default_value = crate::leader::DEFAULT_LEASE_NAME)]
    pub leader_election_lease_name: String,
    /// Namespace of the Lease; default: the POD_NAMESPACE environment variable (in a pod, from the downward
    /// API). One of them is required with --leader-election.
    #[arg(long, env = "FLINK_OPERATOR_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Holder identity written into the Lease; default: the HOSTNAME environment variable plus a random
    /// suffix (a restarted process is a new holder).
    #[arg(long, env = "FLINK_OPERATOR_LEADER_ELECTION_IDENTITY")]
    pub leader_election_identity: Option<String>,
    /// How long a standby waits after the Lease last changed before taking it over.
    #[arg(long, env = "FLINK_OPERATOR_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading (and exits).
    #[arg(long, env = "FLINK_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub leader_election_renew_deadline: Duration,
    /// Pause between renewals of the leader and between checks of a standby.
    #[arg(long, env = "FLINK_OPERATOR_LEADER_ELECTION_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub leader_election_retry_period: Duration,
}

/// Self-managed webhook certificates: the operator keeps its CA and serving certificate in a Secret, writes
/// them to `--tls-cert-file`/`--tls-key-file` and the CA into its webhook configurations' caBundle.
#[derive(Clone, Debug, clap::Args)]
pub struct SelfManagedOptions {
    /// Secret holding the webhook's CA and serving certificate; setting it turns self-managed certificates on.
    #[arg(
        long,
        env = "FLINK_OPERATOR_SELF_MANAGED_CERTS_SECRET",
        conflicts_with = "no_webhook"
    )]
    pub self_managed_certs_secret: Option<String>,
    /// Namespace of that Secret (in a pod: its own namespace, e.g. from the downward API).
    #[arg(
        long,
        env = "FLINK_OPERATOR_SELF_MANAGED_CERTS_NAMESPACE",
        requires = "self_managed_certs_secret"
    )]
    pub self_managed_certs_namespace: Option<String>,
    /// DNS names of the webhook Service the serving certificate must cover (comma-separated).
    #[arg(
        long,
        env = "FLINK_OPERATOR_WEBHOOK_DNS_NAMES",
        value_delimiter = ',',
        requires = "self_managed_certs_secret"
    )]
    pub webhook_dns_names: Vec<String>,
    /// Name of the Validating- and MutatingWebhookConfiguration whose caBundle the operator keeps current.
    #[arg(
        long,
        env = "FLINK_OPERATOR_WEBHOOK_CONFIGURATION",
        default_value = crate::webhook::configuration::NAME
    )]
    pub webhook_configuration: String,
    /// Validity of a new serving certificate (the CA gets twice as long).
    #[arg(long, env = "FLINK_OPERATOR_CERT_VALIDITY", default_value = "365d", value_parser = parse_duration)]
    pub cert_validity: Duration,
    /// Renew the serving certificate when it expires within this time.
    #[arg(long, env = "FLINK_OPERATOR_CERT_RENEW_BEFORE", default_value = "30d", value_parser = parse_duration)]
    pub cert_renew_before: Duration,
    /// How often the Secret and the caBundles are re-checked.
    #[arg(long, env = "FLINK_OPERATOR_CERT_CHECK_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub cert_check_interval: Duration,
}

/// Runs the operator until SIGTERM/SIGINT, or until one of its parts fails.
pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    // One crypto provider for every TLS user in the process (webhook, Kubernetes client).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match &opts.config {
        Some(path) => OperatorConfig::load(path)?,
        None => OperatorConfig::default(),
    };
    let defaults = config.flink_defaults();
    let resync = config.duration(RECONCILE_INTERVAL, Duration::from_secs(60))?;
    let reconcile_parallelism = config.reconcile_parallelism()?;
    let metrics = Metrics::new().context("cannot create the metrics registry")?;
    let health = Health::new();
    // Closed until every part has registered its own gates: the admin server answers from the start, and a
    // probe between its start and a later registration (the controller's come after a Kubernetes client is
    // built) would otherwise find no open gate and report ready.
    health.register(STARTUP_GATE);
    let shutdown = CancellationToken::new();
    let limits = Limits {
        header_read_timeout: opts.webhook_request_timeout,
        drain_timeout: opts.shutdown_timeout,
        ..Limits::default()
    };
    let mut parts: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();

    // The admin server outlives the other parts' drain, so probes keep answering (503) until the end.
    let admin_stop = CancellationToken::new();
    let admin_listener = TcpListener::bind(opts.admin_addr)
        .await
        .with_context(|| format!("cannot listen on --admin-addr {}", opts.admin_addr))?;
    info!(addr = %local(&admin_listener), "admin server listening");
    parts.spawn(named(
        "admin",
        server::serve(
            "admin",
            admin_listener,
            None,
            admin::router(health.clone(), metrics.clone()),
            limits.clone(),
            admin_stop.clone(),
        ),
    ));

    if !opts.no_webhook {
        health.register("webhook");
        let paths = tls::CertPaths {
            cert: opts
                .tls_cert_file
                .clone()
                .context("--tls-cert-file is required for the webhook")?,
            key: opts
                .tls_key_file
                .clone()
                .context("--tls-key-file is required for the webhook")?,
        };
        if let Some(settings) = self_managed_settings(&opts, &paths)? {
            let client = kube::Client::try_default()
                .await
                .context("cannot create a Kubernetes client for self-managed webhook certificates")?;
            // Before the webhook serves: the files it loads come from the Secret.
            self_managed::prepare(&client, &settings)
                .await
                .context("cannot set up self-managed webhook certificates")?;
            parts.spawn(named(
                "webhook-certs",
                self_managed::maintain(client, settings, shutdown.clone()),
            ));
        }
        let loaded = tls::load(&paths)?;
        let listener = TcpListener::bind(opts.webhook_addr)
            .await
            .with_context(|| format!("cannot listen on --webhook-addr {}", opts.webhook_addr))?;
        info!(addr = %local(&listener), "webhook listening (TLS)");
        let state = Arc::new(WebhookState {
            defaults: defaults.clone(),
            metrics: metrics.clone(),
        });
        let router = webhook::router(state, opts.webhook_body_limit, opts.webhook_request_timeout);
        let acceptor = tokio_rustls::TlsAcceptor::from(loaded.config);
        parts.spawn(named(
            "webhook",
            server::serve(
                "webhook",
                listener,
                Some(acceptor),
                router,
                limits.clone(),
                shutdown.clone(),
            ),
        ));
        parts.spawn(named(
            "tls-reload",
            tls::reload_on_change(
                loaded.store,
                paths,
                loaded.fingerprint,
                opts.tls_reload_interval,
                shutdown.clone(),
            ),
        ));
        health.set_ready("webhook", true);
    }

    if !opts.no_controller {
        let namespaces = if opts.watch_namespaces.is_empty() {
            Namespaces::All
        } else {
            Namespaces::Only(opts.watch_namespaces.clone())
        };
        let election = leader_settings(&opts.leader_election, env_var)?;
        let gates = controller::watch_gates(&namespaces);
        let client = controller_client(&metrics)
            .await
            .context("cannot create a Kubernetes client (set KUBECONFIG, run in a pod, or pass --no-controller)")?;
        let control = {
            let (metrics, health, shutdown) = (metrics.clone(), health.clone(), shutdown.clone());
            let settings = controller::Settings {
                defaults,
                rest: crate::flink::RestClient::new(opts.flink_rest_timeout),
                jars: crate::flink::JarFetcher::new(opts.jar_ca_file.as_deref(), opts.jar_fetch_timeout)
                    .context("cannot set up fetching session job jars (--jar-ca-file)")?,
                rest_url_template: opts.flink_rest_url.clone(),
                resync,
                reconcile_parallelism,
            };
            move || controller::run(client, namespaces, settings, metrics, health, shutdown)
        };
        match election {
            None => {
                for gate in &gates {
                    health.register(gate);
                }
                parts.spawn(named("controller", control()));
            }
            Some(settings) => {
                info!(
                    lease = format!("{}/{}", settings.namespace, settings.name),
                    identity = settings.identity,
                    "leader election on; the controllers start once this replica holds the lease"
                );
                // Lease writes go through a client of their own, so the write counter shows the controllers'.
                let lease_client = kube::Client::try_default()
                    .await
                    .context("cannot create a Kubernetes client for leader election")?;
                let elector = leader::Elector::new(lease_client, settings, metrics.clone())?;
                let lead = leader::lead(elector, gates, health.clone(), shutdown.clone(), control);
                parts.spawn(async move { ("controller", lead.await.map_err(anyhow::Error::from)) });
            }
        }
    }

    health.set_ready(STARTUP_GATE, true);

    let signalled = {
        let (health, shutdown) = (health.clone(), shutdown.clone());
        tokio::spawn(async move {
            let why = wait_for_signal().await;
            info!(signal = why, "shutting down");
            health.begin_shutdown();
            shutdown.cancel();
            let second = wait_for_signal().await;
            warn!(signal = second, "second signal; exiting now");
            std::process::exit(130);
        })
    };

    let mut failure = None;
    loop {
        if shutdown.is_cancelled() && parts.len() <= 1 {
            admin_stop.cancel();
        }
        let joined = tokio::select! {
            joined = parts.join_next() => joined,
            _ = shutdown.cancelled(), if !admin_stop.is_cancelled() && parts.len() <= 1 => continue,
        };
        let Some(joined) = joined else { break };
        let (part, outcome) = match joined {
            Ok(done) => done,
            Err(e) => ("task", Err(anyhow::anyhow!("panicked: {e}"))),
        };
        if shutdown.is_cancelled() {
            continue;
        }
        // A part ended on its own: the process is no longer whole.
        let why = match outcome {
            Ok(()) => "stopped unexpectedly".to_string(),
            Err(e) => format!("{e:#}"),
        };
        error!(part, why, "a part of the operator stopped; shutting down");
        health.mark_dead(part, &why);
        health.begin_shutdown();
        shutdown.cancel();
        failure = Some(anyhow::anyhow!("{part} stopped: {why}"));
    }
    signalled.abort();
    match failure {
        Some(e) => Err(e),
        None => {
            info!("stopped");
            Ok(())
        }
    }
}

/// The controllers' Kubernetes client: every write it sends is counted (`flink_operator_api_writes_total`).
async fn controller_client(metrics: &Metrics) -> anyhow::Result<kube::Client> {
    let config = kube::Config::infer().await?;
    let metrics = metrics.clone();
    let count = tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        metrics.api_request(request.method());
        request
    });
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&count)
        .build())
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Leader election settings when `--leader-election` is on. The Lease's namespace is
/// `--leader-election-namespace`, else `POD_NAMESPACE`; without either it is an error (a guessed namespace
/// could split the replicas over two Leases).
fn leader_settings(
    options: &LeaderElectionOptions,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<leader::Settings>> {
    if !options.leader_election {
        return Ok(None);
    }
    let namespace = options
        .leader_election_namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| env("POD_NAMESPACE"))
        .context("--leader-election needs --leader-election-namespace or the POD_NAMESPACE environment variable")?;
    let identity = options
        .leader_election_identity
        .clone()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| leader::default_identity(env("HOSTNAME").as_deref()));
    let settings = leader::Settings {
        namespace,
        name: options.leader_election_lease_name.clone(),
        identity,
        lease_duration: options.leader_election_lease_duration,
        renew_deadline: options.leader_election_renew_deadline,
        retry_period: options.leader_election_retry_period,
    };
    settings.validate()?;
    Ok(Some(settings))
}

/// Settings of self-managed certificates, when `--self-managed-certs-secret` is given.
fn self_managed_settings(opts: &RunOptions, paths: &tls::CertPaths) -> anyhow::Result<Option<self_managed::Settings>> {
    let options = &opts.self_managed;
    let Some(secret_name) = options.self_managed_certs_secret.clone() else {
        return Ok(None);
    };
    let secret_namespace = options
        .self_managed_certs_namespace
        .clone()
        .context("--self-managed-certs-namespace is required with --self-managed-certs-secret")?;
    anyhow::ensure!(
        !options.webhook_dns_names.is_empty(),
        "--webhook-dns-names is required with --self-managed-certs-secret"
    );
    anyhow::ensure!(
        options.cert_renew_before < options.cert_validity,
        "--cert-renew-before must be shorter than --cert-validity"
    );
    Ok(Some(self_managed::Settings {
        secret_namespace,
        secret_name,
        dns_names: options.webhook_dns_names.clone(),
        webhook_configuration: options.webhook_configuration.clone(),
        validity: options.cert_validity,
        renew_before: options.cert_renew_before,
        check_interval: options.cert_check_interval,
        paths: paths.clone(),
    }))
}

async fn named<F>(name: &'static str, fut: F) -> (&'static str, anyhow::Result<()>)
where
    F: std::future::Future<Output = ()>,
{
    fut.await;
    (name, Ok(()))
}

fn local(listener: &TcpListener) -> String {
    listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers the process can still be stopped with SIGKILL.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunOptions,
    }

    fn options(args: &[&str]) -> LeaderElectionOptions {
        let mut all = vec!["flink-operator", "--no-webhook"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().run.leader_election
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn one_worker_thread_by_default_and_never_none() {
        let parse = |extra: &[&str]| {
            let mut all = vec!["flink-operator", "--no-webhook"];
            all.extend_from_slice(extra);
            Cli::try_parse_from(all).map(|cli| cli.run.worker_threads)
        };
        assert_eq!(parse(&[]).unwrap(), 1);
        assert_eq!(parse(&["--worker-threads=4"]).unwrap(), 4);
        assert!(parse(&["--worker-threads=0"]).is_err());
        assert!(parse(&["--worker-threads=many"]).is_err());
    }

    #[test]
    fn leader_election_is_off_by_default() {
        assert!(leader_settings(&options(&[]), env(&[])).unwrap().is_none());
    }

    #[test]
    fn leader_election_defaults_like_controller_runtime() {
        let settings = leader_settings(
            &options(&["--leader-election"]),
            env(&[("POD_NAMESPACE", "ops"), ("HOSTNAME", "op-1")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(settings.namespace, "ops");
        assert_eq!(settings.name, "flink-operator-lease");
        assert!(settings.identity.starts_with("op-1-"), "{}", settings.identity);
        assert_eq!(
            (settings.lease_duration, settings.renew_deadline, settings.retry_period),
            (Duration::from_secs(15), Duration::from_secs(10), Duration::from_secs(2))
        );
    }

    #[test]
    fn leader_election_flags_override_the_environment() {
        let opts = options(&[
            "--leader-election",
            "--leader-election-namespace=flag-ns",
            "--leader-election-identity=me",
            "--leader-election-lease-name=lease",
            "--leader-election-lease-duration=4s",
            "--leader-election-renew-deadline=3s",
            "--leader-election-retry-period=1s",
        ]);
        let settings = leader_settings(&opts, env(&[("POD_NAMESPACE", "ops")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (settings.namespace.as_str(), settings.identity.as_str()),
            ("flag-ns", "me")
        );
        assert_eq!(settings.name, "lease");
        assert_eq!(settings.lease_duration, Duration::from_secs(4));
    }

    #[test]
    fn leader_election_without_a_namespace_or_with_bad_timings_is_refused() {
        let err = leader_settings(&options(&["--leader-election"]), env(&[])).unwrap_err();
        assert!(err.to_string().contains("--leader-election-namespace"), "{err}");
        let opts = options(&["--leader-election", "--leader-election-renew-deadline=20s"]);
        let err = leader_settings(&opts, env(&[("POD_NAMESPACE", "ops")])).unwrap_err();
        assert!(err.to_string().contains("renew deadline"), "{err}");
        assert!(
            Cli::try_parse_from(["flink-operator", "--no-webhook", "--no-controller", "--leader-election"]).is_err()
        );
    }
}
