//! The Validating- and MutatingWebhookConfigurations that route FlinkDeployment and FlinkSessionJob
//! admission to this webhook (used by `flink-operator webhook-config`, the local environment and tests).

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ObjectMeta;

/// Name of both configurations.
pub const NAME: &str = "flink-operator";

/// Where the API server sends admission requests.
#[derive(Clone, Debug)]
pub enum Target {
    /// A URL base such as `https://127.0.0.1:9443` (local runs, tests).
    Url(String),
    /// A Service in the cluster.
    Service { namespace: String, name: String, port: i32 },
}

/// Settings shared by both configurations.
#[derive(Clone, Debug)]
pub struct Settings {
    pub target: Target,
    /// PEM of the CA that signed the webhook's serving certificate.
    pub ca_bundle: Vec<u8>,
    pub failure_policy: String,
    pub timeout_seconds: i32,
    /// Restrict to these namespaces (by the `kubernetes.io/metadata.name` label); empty = all.
    pub namespaces: Vec<String>,
}

fn client_config(settings: &Settings, path: &str) -> WebhookClientConfig {
    let (url, service) = match &settings.target {
        Target::Url(base) => (Some(format!("{}{path}", base.trim_end_matches('/'))), None),
        Target::Service { namespace, name, port } => (
            None,
            Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(path.to_string()),
                port: Some(*port),
            }),
        ),
    };
    WebhookClientConfig {
        ca_bundle: Some(ByteString(settings.ca_bundle.clone())),
        service,
        url,
    }
}

fn rules() -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        api_groups: Some(vec!["flink.apache.org".into()]),
        api_versions: Some(vec!["v1beta1".into()]),
        operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
        resources: Some(vec!["flinkdeployments".into(), "flinksessionjobs".into()]),
        scope: Some("Namespaced".into()),
    }]
}

fn namespace_selector(settings: &Settings) -> Option<LabelSelector> {
    if settings.namespaces.is_empty() {
        return None;
    }
    Some(LabelSelector {
        match_expressions: Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                key: "kubernetes.io/metadata.name".into(),
                operator: "In".into(),
                values: Some(settings.namespaces.clone()),
            },
        ]),
        match_labels: None,
    })
}

pub fn validating(settings: &Settings) -> ValidatingWebhookConfiguration {
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: "validate.flink.apache.org".into(),
            admission_review_versions: vec!["v1".into()],
            client_config: client_config(settings, "/validate"),
            failure_policy: Some(settings.failure_policy.clone()),
            match_policy: Some("Equivalent".into()),
            namespace_selector: namespace_selector(settings),
            rules: Some(rules()),
            side_effects: "None".into(),
            timeout_seconds: Some(settings.timeout_seconds),
            ..ValidatingWebhook::default()
        }]),
    }
}

pub fn mutating(settings: &Settings) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "mutate.flink.apache.org".into(),
            admission_review_versions: vec!["v1".into()],
            client_config: client_config(settings, "/mutate"),
            failure_policy: Some(settings.failure_policy.clone()),
            match_policy: Some("Equivalent".into()),
            namespace_selector: namespace_selector(settings),
            reinvocation_policy: Some("Never".into()),
            rules: Some(rules()),
            side_effects: "None".into(),
            timeout_seconds: Some(settings.timeout_seconds),
            ..MutatingWebhook::default()
        }]),
    }
}

/// Both configurations as a YAML stream.
pub fn yaml(settings: &Settings) -> Result<String, serde_yaml::Error> {
    Ok(format!(
        "---\n{}---\n{}",
        serde_yaml::to_string(&validating(settings))?,
        serde_yaml::to_string(&mutating(settings))?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_service_targets() {
        let mut settings = Settings {
            target: Target::Url("https://127.0.0.1:9443/".into()),
            ca_bundle: b"PEM".to_vec(),
            failure_policy: "Fail".into(),
            timeout_seconds: 5,
            namespaces: vec![],
        };
        let v = validating(&settings);
        let hook = &v.webhooks.as_ref().unwrap()[0];
        assert_eq!(
            hook.client_config.url.as_deref(),
            Some("https://127.0.0.1:9443/validate")
        );
        assert_eq!(hook.side_effects, "None");
        assert!(hook.namespace_selector.is_none());
        settings.target = Target::Service {
            namespace: "ops".into(),
            name: "flink-operator-webhook".into(),
            port: 443,
        };
        settings.namespaces = vec!["a".into(), "b".into()];
        let m = mutating(&settings);
        let hook = &m.webhooks.as_ref().unwrap()[0];
        assert_eq!(
            hook.client_config.service.as_ref().unwrap().path.as_deref(),
            Some("/mutate")
        );
        let selector = hook
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap();
        assert_eq!(
            selector[0].values.as_ref().unwrap(),
            &vec!["a".to_string(), "b".to_string()]
        );
        assert!(yaml(&settings).unwrap().contains("caBundle: UEVN"));
    }
}
