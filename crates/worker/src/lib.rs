//! tubewatch workers: the leased claim loop and the jobs it runs (channel checks, video checks
//! with change detection and thumbnail archive), the tracking operations users start them with,
//! the use cases the web pages, the JSON API and the CLI share (`service`), the blob store and the
//! pipeline's metrics.
#![forbid(unsafe_code)]

pub mod abtest;
pub mod abtest_job;
pub mod abtest_result;
pub mod blobs;
mod check_writer;
mod digest_job;
pub mod mail;
pub mod metrics;
pub mod outliers_config;
pub mod outliers_job;
mod pipeline;
pub mod reach;
mod runner;
pub mod service;
pub mod token_crypto;
pub mod track;
pub mod webhook;

pub use blobs::{BlobError, Blobs, S3Config, S3ConfigError, S3Credentials, thumbnail_key};
pub use check_writer::CheckWriter;
pub use mail::{Delivery, InlineImage, Mail, MailConfig, Mailer, SmtpConfig, SmtpServer, SmtpTls};
pub use metrics::Metrics;
pub use outliers_config::OutliersConfig;
pub use pipeline::{Pipeline, PipelineConfig, Prefetched};
pub use runner::{RunnerConfig, run_worker};
pub use service::Service;
pub use track::{Limited, TrackError, Tracked, Tracker, month_start};
pub use webhook::Webhooks;
