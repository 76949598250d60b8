//! Prometheus metrics of the tracking pipeline: claims, completions and failures by kind and
//! error class, slot lag (completion time − slot time), queue depth, YouTube request latency,
//! video checks per store write, webhook attempts by outcome.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tubewatch_store::QueueStats;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub kind: String,
    pub class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `delivered` or `failed`.
    pub outcome: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    pub claimed: Family<KindLabel, Counter>,
    pub completed: Family<KindLabel, Counter>,
    pub failed: Family<FailureLabels, Counter>,
    pub slot_lag_seconds: Family<KindLabel, Histogram>,
    pub youtube_seconds: Family<EndpointLabel, Histogram>,
    /// Video checks written per store transaction (group commit).
    pub check_batch_size: Histogram,
    pub webhook_attempts: Family<OutcomeLabel, Counter>,
    pub queue_due: Gauge,
    pub queue_leased: Gauge,
    pub queue_active: Gauge,
    pub queue_failed: Gauge,
    /// Age of the oldest due target, in seconds of the service's clock.
    pub queue_oldest_due_seconds: Gauge,
}

fn lag_histogram() -> Histogram {
    Histogram::new([1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 2700.0, 3600.0, 7200.0])
}

fn latency_histogram() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tubewatch");
        let m = Self {
            registry: Mutex::new(Registry::default()),
            claimed: Family::default(),
            completed: Family::default(),
            failed: Family::default(),
            slot_lag_seconds: Family::new_with_constructor(lag_histogram),
            youtube_seconds: Family::new_with_constructor(latency_histogram),
            check_batch_size: Histogram::new([1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]),
            webhook_attempts: Family::default(),
            queue_due: Gauge::default(),
            queue_leased: Gauge::default(),
            queue_active: Gauge::default(),
            queue_failed: Gauge::default(),
            queue_oldest_due_seconds: Gauge::default(),
        };
        registry.register("targets_claimed", "Targets claimed by workers", m.claimed.clone());
        registry.register("targets_completed", "Target runs completed", m.completed.clone());
        registry.register("targets_failed", "Target runs failed, by error class", m.failed.clone());
        registry.register(
            "slot_lag_seconds",
            "Completion time minus slot time of each measurement",
            m.slot_lag_seconds.clone(),
        );
        registry.register("youtube_request_seconds", "YouTube request latency by endpoint", m.youtube_seconds.clone());
        registry.register(
            "video_check_batch_size",
            "Video checks written per store transaction",
            m.check_batch_size.clone(),
        );
        registry.register("webhook_attempts", "Outgoing webhook attempts by outcome", m.webhook_attempts.clone());
        registry.register("queue_due", "Active targets due now and not leased", m.queue_due.clone());
        registry.register("queue_leased", "Targets leased by a worker", m.queue_leased.clone());
        registry.register("queue_active", "Active targets", m.queue_active.clone());
        registry.register("queue_failed", "Targets stopped by a permanent error", m.queue_failed.clone());
        registry.register(
            "queue_oldest_due_seconds",
            "How long the oldest due target has waited",
            m.queue_oldest_due_seconds.clone(),
        );
        *m.registry.lock().unwrap_or_else(|e| e.into_inner()) = registry;
        m
    }
}

impl Metrics {
    pub fn kind(kind: &str) -> KindLabel {
        KindLabel { kind: kind.to_owned() }
    }

    pub fn set_queue(&self, stats: &QueueStats, now: chrono::DateTime<chrono::Utc>) {
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.queue_due.set(as_i64(stats.due));
        self.queue_leased.set(as_i64(stats.leased));
        self.queue_active.set(as_i64(stats.active));
        self.queue_failed.set(as_i64(stats.failed));
        self.queue_oldest_due_seconds.set(stats.oldest_due_at.map_or(0, |t| (now - t).num_seconds().max(0)));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_counted() {
        let m = Metrics::default();
        m.claimed.get_or_create(&Metrics::kind("video")).inc_by(3);
        m.failed.get_or_create(&FailureLabels { kind: "video".into(), class: "bot_check".into() }).inc();
        m.slot_lag_seconds.get_or_create(&Metrics::kind("video")).observe(42.0);
        m.webhook_attempts.get_or_create(&OutcomeLabel { outcome: "failed".into() }).inc();
        let text = m.render();
        assert!(text.contains("tubewatch_webhook_attempts_total{outcome=\"failed\"} 1"), "{text}");
        assert!(text.contains("tubewatch_targets_claimed_total{kind=\"video\"} 3"), "{text}");
        assert!(text.contains("tubewatch_targets_failed_total{kind=\"video\",class=\"bot_check\"} 1"), "{text}");
        assert!(text.contains("tubewatch_slot_lag_seconds_count{kind=\"video\"} 1"), "{text}");
    }
}
