//! `flink-operator`: a Kubernetes operator for Apache Flink.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flink_operator::run::RunOptions;
use flink_operator::{certs, crd, rbac, telemetry};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "flink-operator",
    version,
    about = "Kubernetes operator for Apache Flink (flink.apache.org/v1beta1)"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunOptions,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator (the default).
    Run(Box<RunOptions>),
    /// Print the FlinkDeployment and FlinkSessionJob CRDs as YAML.
    Crds,
    /// Print the ClusterRole with every permission the operator needs, as YAML.
    Rbac {
        /// Also print the Role for leader election (get, create and update of its Lease) in this namespace:
        /// the Lease's namespace only, so it is not part of the ClusterRole.
        #[arg(long)]
        leader_election_namespace: Option<String>,
        /// Name of the Lease.
        #[arg(long, default_value = flink_operator::leader::DEFAULT_LEASE_NAME)]
        leader_election_lease_name: String,
    },
    /// Print the Validating- and MutatingWebhookConfigurations that route admission to the webhook.
    WebhookConfig {
        /// URL base of the webhook, e.g. https://127.0.0.1:9443 (or use --service).
        #[arg(long, conflicts_with = "service")]
        url: Option<String>,
        /// Service of the webhook as NAMESPACE/NAME[:PORT] (port default 443).
        #[arg(long)]
        service: Option<String>,
        /// PEM file of the CA that signed the webhook certificate.
        #[arg(long)]
        ca_file: PathBuf,
        /// Failure policy: Fail or Ignore.
        #[arg(long, default_value = "Fail")]
        failure_policy: String,
        /// Seconds the API server waits for an answer.
        #[arg(long, default_value_t = 10)]
        timeout_seconds: i32,
        /// Only these namespaces (comma-separated); default all.
        #[arg(long, value_delimiter = ',')]
        namespaces: Vec<String>,
    },
    /// Write a fresh CA (ca.crt) and a serving certificate signed by it (tls.crt, tls.key).
    Certs {
        /// Directory to write into.
        #[arg(long)]
        out: PathBuf,
        /// DNS name for the certificate (repeatable).
        #[arg(long)]
        dns: Vec<String>,
        /// IP address for the certificate (repeatable).
        #[arg(long)]
        ip: Vec<IpAddr>,
        /// Validity of the serving certificate in days (the CA gets twice as long).
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run(cli.run),
        Some(Command::Run(opts)) => run(*opts),
        Some(Command::Crds) => crd::crds_yaml().map_err(anyhow::Error::from).and_then(print),
        Some(Command::Rbac {
            leader_election_namespace,
            leader_election_lease_name,
        }) => rbac_yaml(leader_election_namespace.as_deref(), &leader_election_lease_name).and_then(print),
        Some(Command::WebhookConfig {
            url,
            service,
            ca_file,
            failure_policy,
            timeout_seconds,
            namespaces,
        }) => webhook_config(url, service, ca_file, failure_policy, timeout_seconds, namespaces),
        Some(Command::Certs { out, dns, ip, days }) => certs::generate(&dns, &ip, days)
            .and_then(|c| c.write_to(&out))
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flink-operator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print(text: String) -> anyhow::Result<()> {
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

fn rbac_yaml(leader_election_namespace: Option<&str>, lease: &str) -> anyhow::Result<String> {
    let mut text = format!("---\n{}", serde_yaml::to_string(&rbac::cluster_role())?);
    if let Some(namespace) = leader_election_namespace {
        let role = rbac::leader_election_role(Some(namespace), lease);
        text.push_str(&format!("---\n{}", serde_yaml::to_string(&role)?));
    }
    Ok(text)
}

fn webhook_config(
    url: Option<String>,
    service: Option<String>,
    ca_file: PathBuf,
    failure_policy: String,
    timeout_seconds: i32,
    namespaces: Vec<String>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use flink_operator::webhook::configuration::{Settings, Target, yaml};
    let target = match (url, service) {
        (Some(url), _) => Target::Url(url),
        (None, Some(service)) => {
            let (namespace, rest) = service
                .split_once('/')
                .context("--service must be NAMESPACE/NAME[:PORT]")?;
            let (name, port) = match rest.split_once(':') {
                Some((name, port)) => (name, port.parse().context("--service port must be a number")?),
                None => (rest, 443),
            };
            Target::Service {
                namespace: namespace.into(),
                name: name.into(),
                port,
            }
        }
        (None, None) => anyhow::bail!("give --url or --service"),
    };
    let ca_bundle = std::fs::read(&ca_file).with_context(|| format!("cannot read {}", ca_file.display()))?;
    let settings = Settings {
        target,
        ca_bundle,
        failure_policy,
        timeout_seconds,
        namespaces,
    };
    print(yaml(&settings)?)
}

fn run(opts: RunOptions) -> anyhow::Result<()> {
    telemetry::init_logging(opts.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(opts.worker_threads))
        .enable_all()
        .build()?;
    runtime.block_on(flink_operator::run::run(opts))
}
