//! A Kubernetes operator for Apache Flink, compatible with the upstream `flink.apache.org/v1beta1` API.

pub mod certs;
pub mod config;
pub mod controller;
pub mod crd;
pub mod flink;
pub mod flink_config;
pub mod leader;
pub mod rbac;
pub mod resources;
pub mod run;
pub mod server;
pub mod telemetry;
pub mod validation;
pub mod webhook;
