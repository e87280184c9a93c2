//! Every example in `examples/` passes the shared validation; every example in `examples/invalid/` is
//! rejected with a violation at the field its `# expect-error:` line names.

use std::path::{Path, PathBuf};

use flink_operator::crd::{FlinkConfiguration, FlinkDeployment, FlinkSessionJob};
use flink_operator::validation::{Violations, validate_deployment, validate_session_job};

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Validates every document of a file; returns (kind, result) per document.
fn validate_file(path: &Path) -> Vec<(String, Result<(), Violations>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let defaults = FlinkConfiguration::new();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let value = serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap();
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let result = match kind.as_str() {
                "FlinkDeployment" => {
                    let d: FlinkDeployment =
                        serde_json::from_value(value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    validate_deployment(&d, None, &defaults)
                }
                "FlinkSessionJob" => {
                    let j: FlinkSessionJob =
                        serde_json::from_value(value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    validate_session_job(&j, None, &defaults)
                }
                other => panic!("{}: unexpected kind {other}", path.display()),
            };
            (kind, result)
        })
        .collect()
}

use serde::Deserialize;

#[test]
fn valid_examples_pass_validation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let files = yaml_files(&dir);
    assert!(files.len() >= 10, "expected the examples, found {files:?}");
    for file in files {
        for (kind, result) in validate_file(&file) {
            assert_eq!(result, Ok(()), "{} ({kind}) should be valid", file.display());
        }
    }
}

#[test]
fn invalid_examples_are_rejected_at_their_field() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/invalid");
    let files = yaml_files(&dir);
    assert!(files.len() >= 15, "expected the invalid examples, found {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expected = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect-error:"))
            .unwrap_or_else(|| panic!("{} has no '# expect-error:' line", file.display()))
            .trim()
            .to_string();
        let results = validate_file(&file);
        assert_eq!(results.len(), 1, "{}: one document per invalid example", file.display());
        let (_, result) = &results[0];
        let violations = result
            .as_ref()
            .expect_err(&format!("{} should be rejected", file.display()));
        assert!(
            violations.0.iter().any(|v| v.field == expected),
            "{}: expected a violation at {expected}, got: {violations}",
            file.display()
        );
    }
}
