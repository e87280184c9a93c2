//! The Dockerfile, checked without a Docker engine: parsed by BuildKit's own parser (PyPI `dockerfile`, via
//! `tests/env/pytool.sh`), every instruction known and well-formed, and its promises held against the code:
//! the build stage compiles exactly the Docker build context (`.dockerignore`) with the toolchain of this
//! machine and the command `tests/env/images/operator.sh` uses (CI builds the operator image's binary that way,
//! from a copy of that context); the final stage is distroless, non-root, holds only the binary and exposes the
//! operator's default ports.

use std::path::Path;
use std::process::Command;

use clap::{Args, FromArgMatches};
use flink_operator::run::RunOptions;
use serde_json::Value;

/// The build stage's command, also run by tests/env/images/operator.sh.
const BUILD_COMMAND: &str = "cargo build --release --locked";
const BINARY: &str = "/usr/local/bin/flink-operator";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn parse(dockerfile: &Path) -> Result<Vec<Value>, String> {
    let venv = Command::new("bash")
        .arg(repo().join("tests/env/pytool.sh"))
        .args(["dockerfile-3.4.0", "dockerfile", "dockerfile==3.4.0"])
        .output()
        .unwrap();
    assert!(venv.status.success(), "{}", String::from_utf8_lossy(&venv.stderr));
    let python = String::from_utf8(venv.stdout).unwrap();
    let out = Command::new(python.trim())
        .arg(repo().join("tests/dockerfile/parse.py"))
        .arg(dockerfile)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "parser output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    match json {
        Value::Array(commands) if out.status.success() => Ok(commands),
        other => Err(other["error"].as_str().unwrap_or_default().to_string()),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Instructions of each stage (`FROM` starts one); the ARGs before the first FROM are returned apart.
fn stages(commands: &[Value]) -> (Vec<&Value>, Vec<Vec<&Value>>) {
    let mut global = Vec::new();
    let mut stages: Vec<Vec<&Value>> = Vec::new();
    for command in commands {
        match (command["cmd"].as_str().unwrap(), stages.last_mut()) {
            ("FROM", _) => stages.push(vec![command]),
            (_, Some(stage)) => stage.push(command),
            (_, None) => global.push(command),
        }
    }
    (global, stages)
}

/// Paths `.dockerignore` admits: it excludes everything (`*`) and lists the exceptions (`!PATH`).
fn build_context() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    let mut lines = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#'));
    assert_eq!(lines.next(), Some("*"), ".dockerignore must exclude everything first");
    lines
        .map(|l| {
            l.strip_prefix('!')
                .unwrap_or_else(|| panic!(".dockerignore: {l}"))
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

#[test]
fn dockerfile_parses_and_keeps_its_promises() {
    let commands = parse(&repo().join("Dockerfile")).unwrap();
    const KNOWN: [&str; 18] = [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ];
    for command in &commands {
        let cmd = command["cmd"].as_str().unwrap();
        assert!(KNOWN.contains(&cmd), "unknown instruction: {}", command["original"]);
        let arity = command["value"].as_array().unwrap().len();
        let minimum = match cmd {
            "COPY" | "ADD" => 2,
            _ => 1,
        };
        assert!(arity >= minimum, "incomplete instruction: {}", command["original"]);
    }

    let (global, stages) = stages(&commands);
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let (build, runtime) = (&stages[0], &stages[1]);

    // Build stage: the toolchain of this machine (rust:<major.minor>-bookworm), only the build context.
    let rustc = Command::new("rustc").arg("--version").output().unwrap();
    let rustc = String::from_utf8(rustc.stdout).unwrap();
    let toolchain: Vec<&str> = rustc.split_whitespace().nth(1).unwrap().split('.').take(2).collect();
    assert!(
        global
            .iter()
            .any(|c| c["original"] == format!("ARG RUST_VERSION={}", toolchain.join("."))),
        "the builder must use this machine's toolchain ({rustc}): {global:?}"
    );
    assert_eq!(
        strings(&build[0]["value"]),
        ["docker.io/library/rust:${RUST_VERSION}-bookworm", "AS", "build"]
    );
    let mut copied: Vec<String> = build
        .iter()
        .filter(|c| c["cmd"] == "COPY")
        .flat_map(|c| {
            let mut sources = strings(&c["value"]);
            sources.pop();
            sources
        })
        .collect();
    copied.sort();
    let mut context = build_context();
    context.sort();
    assert_eq!(copied, context, "the build stage copies exactly the build context");
    let run: Vec<_> = build.iter().filter(|c| c["cmd"] == "RUN").collect();
    assert_eq!(run.len(), 1);
    assert!(
        run[0]["value"][0].as_str().unwrap().starts_with(BUILD_COMMAND),
        "{}",
        run[0]["original"]
    );
    // The local image build (tests/env/images/operator.sh) runs the same command in a copy of the same context.
    let operator_sh = std::fs::read_to_string(repo().join("tests/env/images/operator.sh")).unwrap();
    assert!(
        operator_sh.contains(&format!("(cd \"$CONTEXT\" && {BUILD_COMMAND} --quiet)")),
        "tests/env/images/operator.sh no longer builds like the Dockerfile"
    );

    // Runtime stage: distroless with glibc, non-root, only the binary, the operator's ports.
    assert_eq!(strings(&runtime[0]["value"]), ["gcr.io/distroless/cc-debian12:nonroot"]);
    let copies: Vec<_> = runtime.iter().filter(|c| c["cmd"] == "COPY").collect();
    assert_eq!(copies.len(), 1, "only the binary goes into the image");
    assert!(strings(&copies[0]["flags"]).contains(&"--from=build".to_string()));
    assert_eq!(strings(&copies[0]["value"]), ["/out/flink-operator", BINARY]);
    let last = |cmd: &str| runtime.iter().rev().find(|c| c["cmd"] == cmd).copied();
    assert_eq!(strings(&last("USER").unwrap()["value"]), ["65532:65532"]);
    let entrypoint = last("ENTRYPOINT").unwrap();
    assert_eq!(
        entrypoint["json"], true,
        "exec form: the binary is PID 1 and gets SIGTERM"
    );
    assert_eq!(strings(&entrypoint["value"]), [BINARY]);
    let defaults = RunOptions::from_arg_matches(
        &RunOptions::augment_args(clap::Command::new("run")).get_matches_from(["run", "--no-webhook"]),
    )
    .unwrap();
    assert_eq!(
        strings(&last("EXPOSE").unwrap()["value"]),
        [
            defaults.webhook_addr.port().to_string(),
            defaults.admin_addr.port().to_string()
        ]
    );
}

#[test]
fn the_parser_rejects_a_broken_dockerfile() {
    // Proves the check above can fail: BuildKit's parser refuses what Docker would refuse at parse time.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("Dockerfile");
    std::fs::write(&broken, "FROM scratch\nRUN <<EOF\necho never closed\n").unwrap();
    let error = parse(&broken).unwrap_err();
    assert!(!error.is_empty());
}
