//! The Prometheus metrics of the contract. Every label is a closed set.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts,
    Registry, TextEncoder,
};

/// All metrics, registered in their own registry.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub admission_requests: IntCounterVec,
    pub blocked_deletions: IntCounterVec,
    pub admission_duration: HistogramVec,
    pub protected_objects: GaugeVec,
    pub policy_reloads: IntCounterVec,
    pub policy_last_reload_success: Gauge,
    pub cleanups: IntCounterVec,
    pub cleanup_objects_deleted: IntCounterVec,
    pub cleanup_duration: Histogram,
    pub certificate_expiry: Gauge,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c =
        IntCounterVec::new(Opts::new(name, help), labels).expect("metric names are valid literals");
    registry
        .register(Box::new(c.clone()))
        .expect("each metric is registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::new(name, help).expect("metric names are valid literals");
    registry
        .register(Box::new(g.clone()))
        .expect("each metric is registered once");
    g
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let admission_duration = HistogramVec::new(
            HistogramOpts::new(
                "backup_guard_admission_duration_seconds",
                "Time to answer one admission request, from body read to response encoded.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0,
            ]),
            &["webhook"],
        )
        .expect("metric names are valid literals");
        registry
            .register(Box::new(admission_duration.clone()))
            .expect("each metric is registered once");
        let protected_objects = GaugeVec::new(
            Opts::new(
                "backup_guard_protected_objects",
                "Objects the guard currently protects, by resource.",
            ),
            &["resource"],
        )
        .expect("metric names are valid literals");
        registry
            .register(Box::new(protected_objects.clone()))
            .expect("each metric is registered once");
        let cleanup_duration = Histogram::with_opts(
            HistogramOpts::new(
                "backup_guard_cleanup_duration_seconds",
                "Time to clean up one sanctioned backup.",
            )
            .buckets(vec![0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0]),
        )
        .expect("metric names are valid literals");
        registry
            .register(Box::new(cleanup_duration.clone()))
            .expect("each metric is registered once");
        Metrics {
            admission_requests: counter(
                &registry,
                "backup_guard_admission_requests_total",
                "Admission requests answered, by webhook, operation, resource and decision.",
                &["webhook", "operation", "resource", "decision"],
            ),
            blocked_deletions: counter(
                &registry,
                "backup_guard_blocked_deletions_total",
                "Deletions denied (or, in audit mode, that would have been), by resource and actor.",
                &["resource", "actor"],
            ),
            admission_duration,
            protected_objects,
            policy_reloads: counter(
                &registry,
                "backup_guard_policy_reloads_total",
                "Policy loads, by result (success, failure).",
                &["result"],
            ),
            policy_last_reload_success: gauge(
                &registry,
                "backup_guard_policy_last_reload_success_timestamp_seconds",
                "Unix time of the last policy load that took effect.",
            ),
            cleanups: counter(
                &registry,
                "backup_guard_cleanups_total",
                "Sanctioned cleanups finished, by engine and result (success, failure).",
                &["engine", "result"],
            ),
            cleanup_objects_deleted: counter(
                &registry,
                "backup_guard_cleanup_objects_deleted_total",
                "Storage objects deleted by cleanups, by provider.",
                &["provider"],
            ),
            cleanup_duration,
            certificate_expiry: gauge(
                &registry,
                "backup_guard_certificate_expiry_timestamp_seconds",
                "Unix time at which the serving certificate expires.",
            ),
            registry,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
