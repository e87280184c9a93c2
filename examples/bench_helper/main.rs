//! Helpers of `bench/run.sh` (see BENCHMARKS.md): the webhook's floor server, the AdmissionReview the
//! webhook benchmark sends, and the FlinkDeployment scale run against a real API server.
//! Built with `cargo build --release --example bench_helper`; not part of the operator.

mod floor;
mod scale;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use flink_operator::crd::FlinkConfiguration;
use flink_operator::webhook::admission::{self, Endpoint};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "bench_helper")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the floor webhook (TLS) until killed.
    Floor {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long)]
        tls_cert_file: PathBuf,
        #[arg(long)]
        tls_key_file: PathBuf,
    },
    /// Print an AdmissionReview (admission.k8s.io/v1, CREATE) of the FlinkDeployment in FILE.
    Review { file: PathBuf },
    /// Create FlinkDeployments at scale and time the operator's answers.
    Scale(scale::ScaleArgs),
    /// Answer the AdmissionReview in FILE COUNT times in-process, as the operator's handler does (`validate`,
    /// `mutate`: the admission decision and its encoding) or as the floor does (`floor`), and print the last
    /// answer. Under callgrind, (instructions at COUNT - at 0) / COUNT is the cost of one answer, TLS and
    /// HTTP aside.
    Decide {
        #[arg(value_parser = ["validate", "mutate", "floor"])]
        endpoint: String,
        file: PathBuf,
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The operator's runtime: multi-threaded, as many workers as CPUs the process may use.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Floor {
            addr,
            tls_cert_file,
            tls_key_file,
        } => runtime.block_on(async {
            let config = floor::tls_config(&tls_cert_file, &tls_key_file)?;
            let listener = tokio::net::TcpListener::bind(addr).await?;
            floor::serve(listener, config).await;
            Ok(())
        }),
        Command::Review { file } => {
            println!("{}", serde_json::to_string(&review(yaml_file(&file)?))?);
            Ok(())
        }
        Command::Scale(args) => runtime.block_on(scale::run(args)),
        Command::Decide { endpoint, file, count } => {
            let body = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut last = Vec::new();
            for _ in 0..count {
                last = match endpoint.as_str() {
                    "floor" => floor::answer_bytes(&body),
                    "mutate" => operator_answer(Endpoint::Mutate, &body),
                    _ => operator_answer(Endpoint::Validate, &body),
                };
            }
            println!("{}", String::from_utf8_lossy(&last));
            Ok(())
        }
    }
}

/// What the operator's webhook handler computes for one request body (see `src/webhook/mod.rs`).
fn operator_answer(endpoint: Endpoint, body: &[u8]) -> Vec<u8> {
    match admission::decide(endpoint, body, &FlinkConfiguration::new()) {
        Ok(decision) => serde_json::to_vec(&decision.review).unwrap_or_default(),
        Err(malformed) => malformed.0.into_bytes(),
    }
}

/// A YAML file as JSON.
fn yaml_file(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text)?)?)
}

/// The review the API server sends for `kubectl create` of `object` in namespace `default`.
fn review(mut object: Value) -> Value {
    let name = object.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
    object["metadata"]["namespace"] = json!("default");
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "flink.apache.org", "version": "v1beta1", "kind": "FlinkDeployment"},
            "resource": {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkdeployments"},
            "requestKind": {"group": "flink.apache.org", "version": "v1beta1", "kind": "FlinkDeployment"},
            "requestResource": {"group": "flink.apache.org", "version": "v1beta1", "resource": "flinkdeployments"},
            "name": name,
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}
