//! Ingress to the Flink REST API and web UI from `spec.ingress`.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    ServiceBackendPort,
};

use super::{BuildError, Cluster};
use crate::validation::ingress_host_and_path;

/// `None` without `spec.ingress`. `ImplementationSpecific` because templates commonly carry controller
/// regexes such as `(/|$)(.*)`, which Prefix and Exact paths reject.
pub fn ingress(cluster: &Cluster) -> Result<Option<Ingress>, BuildError> {
    let Some(spec) = &cluster.spec.ingress else {
        return Ok(None);
    };
    let template = spec
        .template
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .ok_or(BuildError::Missing {
            field: "spec.ingress.template",
        })?;
    let (host, path) = ingress_host_and_path(template, &cluster.name, &cluster.namespace)
        .map_err(|why| BuildError::invalid("spec.ingress.template", why))?;
    let mut metadata = cluster.metadata(cluster.name.clone(), None);
    metadata.annotations = spec.annotations.clone();
    if let Some(user_labels) = &spec.labels {
        // The operator's labels win: they mark the object as this cluster's.
        let mut labels = user_labels.clone();
        labels.extend(cluster.labels(None));
        metadata.labels = Some(labels);
    }
    Ok(Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(vec![rule(cluster, host, path)]),
            tls: spec.tls.clone(),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    }))
}

fn rule(cluster: &Cluster, host: Option<String>, path: String) -> IngressRule {
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: cluster.rest_service_name(),
            port: Some(ServiceBackendPort {
                number: Some(cluster.rest_port),
                ..ServiceBackendPort::default()
            }),
        }),
        ..IngressBackend::default()
    };
    IngressRule {
        host,
        http: Some(HTTPIngressRuleValue {
            paths: vec![HTTPIngressPath {
                backend,
                path: Some(path),
                path_type: "ImplementationSpecific".into(),
            }],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Deploy, MANAGED_BY, MANAGED_BY_LABEL};
    use super::*;
    use crate::crd::{FlinkConfiguration, FlinkDeployment};

    fn ingress_of(fd: &FlinkDeployment) -> Result<Option<Ingress>, BuildError> {
        ingress(&Cluster::new(fd, &FlinkConfiguration::new(), Deploy::default()).unwrap())
    }

    #[test]
    fn path_template_from_example() {
        let ingress = ingress_of(&example("basic-ingress")).unwrap().unwrap();
        assert_eq!(ingress.metadata.name.as_deref(), Some("basic-ingress-example"));
        assert_eq!(ingress.metadata.namespace.as_deref(), Some(NAMESPACE));
        assert_eq!(
            ingress.metadata.annotations,
            Some(string_map(&[("nginx.ingress.kubernetes.io/rewrite-target", "/$2")]))
        );
        assert_eq!(ingress.metadata.owner_references.as_ref().map(Vec::len), Some(1));
        let spec = ingress.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host, None);
        let path = &rule.http.as_ref().unwrap().paths[0];
        assert_eq!(path.path.as_deref(), Some("/flink-ns/basic-ingress-example(/|$)(.*)"));
        assert_eq!(path.path_type, "ImplementationSpecific");
        let service = path.backend.service.as_ref().unwrap();
        assert_eq!(service.name, "basic-ingress-example-rest");
        assert_eq!(service.port.as_ref().unwrap().number, Some(8081));
    }

    #[test]
    fn host_template_labels_tls_and_rest_port() {
        let mut fd = example("basic-ingress");
        let spec = fd.spec.ingress.as_mut().unwrap();
        spec.template = Some("{{name}}.{{namespace}}.flink.example.com".into());
        spec.labels = Some(string_map(&[("team", "data"), ("app", "spoofed")]));
        spec.tls = Some(vec![k8s_openapi::api::networking::v1::IngressTLS {
            hosts: Some(vec!["x.example.com".into()]),
            secret_name: Some("tls".into()),
        }]);
        set_conf(&mut fd, "rest.port", "9091");
        let ingress = ingress_of(&fd).unwrap().unwrap();
        let labels = ingress.metadata.labels.unwrap();
        assert_eq!(labels["team"], "data");
        assert_eq!(labels["app"], "basic-ingress-example");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
        let spec = ingress.spec.unwrap();
        assert_eq!(spec.tls.unwrap()[0].secret_name.as_deref(), Some("tls"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(
            rule.host.as_deref(),
            Some("basic-ingress-example.flink-ns.flink.example.com")
        );
        let path = &rule.http.as_ref().unwrap().paths[0];
        assert_eq!(path.path.as_deref(), Some("/"));
        assert_eq!(
            path.backend.service.as_ref().unwrap().port.as_ref().unwrap().number,
            Some(9091)
        );
    }

    #[test]
    fn absent_or_broken_templates() {
        assert_eq!(ingress_of(&example("basic")).unwrap(), None);
        let mut fd = example("basic-ingress");
        fd.spec.ingress.as_mut().unwrap().template = Some("{{cluster}}.example.com".into());
        assert!(matches!(ingress_of(&fd), Err(BuildError::Invalid { field, .. }) if field == "spec.ingress.template"));
        fd.spec.ingress.as_mut().unwrap().template = None;
        assert_eq!(
            ingress_of(&fd),
            Err(BuildError::Missing {
                field: "spec.ingress.template"
            })
        );
    }
}
