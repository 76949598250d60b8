//! The blob store for archived thumbnails and A/B variant images: a local folder (the embedded
//! default) or an S3-compatible bucket shared by every process on every machine, through
//! `object_store`. Keys are predictable, so a retried archive overwrites the same object with the
//! same bytes. Failures are explained in words an operator can act on (`BlobError`): a missing
//! bucket, refused credentials, missing permissions, an endpoint that does not answer.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use tokio::sync::{Semaphore, SemaphorePermit};
use tubewatch_core::VideoId;

#[derive(Clone)]
pub struct Blobs {
    inner: Arc<dyn ObjectStore>,
    /// Where the blobs are, for messages: `folder PATH` or `S3 bucket NAME at ENDPOINT`.
    location: Arc<str>,
    /// The bucket's name (S3 only), to name it when it is missing.
    bucket: Option<Arc<str>>,
    /// A local folder only: permits for its file operations (see [`LOCAL_OPERATIONS_AT_ONCE`]).
    local_permits: Option<Arc<Semaphore>>,
}

/// File operations on a local blob folder at once. `object_store` runs each on tokio's blocking
/// pool, one thread each while it lasts and up to 512 threads: in a burst's baseline round, where
/// every check archives two thumbnails, a slow disk had dozens of threads writing at once, each
/// with the allocator's memory of its own. A few writers keep a disk as busy as it gets.
pub const LOCAL_OPERATIONS_AT_ONCE: usize = 4;

impl fmt::Debug for Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blobs").field("location", &self.location).finish_non_exhaustive()
    }
}

/// Where an S3-compatible bucket is and how to sign in to it. Without keys here, credentials come
/// from the standard AWS environment chain (see [`S3Credentials`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// The bucket's region; object_store signs for `us-east-1` when unset (what MinIO and most
    /// S3-compatible stores accept).
    pub region: Option<String>,
    /// An S3-compatible store's URL (MinIO, Ceph, R2, …). Unset: AWS S3 in `region`.
    pub endpoint: Option<String>,
    /// `https://BUCKET.host/KEY` instead of `https://host/BUCKET/KEY` (then `endpoint`, if set,
    /// must already name the bucket in its host).
    pub virtual_hosted_style: bool,
    /// Allow an `http://` endpoint (no TLS).
    pub allow_http: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("allow_http", &self.allow_http)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// An S3 setting that cannot work, with the field (`bucket`, `region`, …) to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct S3ConfigError {
    pub field: &'static str,
    pub message: String,
}

fn config_error(field: &'static str, message: impl Into<String>) -> S3ConfigError {
    S3ConfigError { field, message: message.into() }
}

/// Where the S3 credentials come from, in the order they are looked for. Shared profile files
/// (`~/.aws/credentials`, `AWS_PROFILE`, SSO) are not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Credentials {
    /// `access_key_id` and `secret_access_key` in the settings.
    Settings,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) in the environment.
    EnvironmentKeys,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` (EKS IAM roles for service accounts).
    WebIdentity,
    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (an ECS task role).
    EcsTaskRole,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (EKS Pod
    /// Identity).
    EksPodIdentity,
    /// None of the above: the EC2 instance metadata service (IMDSv2).
    InstanceMetadata,
}

impl fmt::Display for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Settings => "the access key in the settings (s3.access_key_id, s3.secret_access_key)",
            Self::EnvironmentKeys => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
            Self::WebIdentity => "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)",
            Self::EcsTaskRole => "the ECS task role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)",
            Self::EksPodIdentity => "EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI)",
            Self::InstanceMetadata => "the EC2 instance metadata service (no keys in the settings or environment)",
        })
    }
}

/// The `AWS_*` variables read for credentials. Where the bucket is (region, endpoint, addressing)
/// comes from tubewatch's own settings only, so `AWS_REGION` or `AWS_ENDPOINT_URL` meant for
/// other tools cannot point tubewatch at another bucket.
const CREDENTIAL_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_METADATA_ENDPOINT",
    "AWS_IMDSV1_FALLBACK",
];

impl S3Config {
    /// Checks what can be checked without asking the store.
    pub fn validate(&self) -> Result<(), S3ConfigError> {
        let b = &self.bucket;
        let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !(3..=63).contains(&b.len())
            || !b.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            || !edge_ok(b.chars().next())
            || !edge_ok(b.chars().last())
        {
            return Err(config_error(
                "bucket",
                format!("{b:?} is not a bucket name: 3–63 lowercase letters, digits, '-' and '.'"),
            ));
        }
        if let Some(region) = &self.region
            && (region.is_empty() || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        {
            return Err(config_error("region", format!("{region:?} is not a region name (like eu-west-1)")));
        }
        match &self.endpoint {
            None if self.region.is_none() => {
                return Err(config_error(
                    "region",
                    "a bucket needs its region (e.g. eu-west-1) for AWS S3, or an endpoint for another \
                     S3-compatible store",
                ));
            }
            None => {}
            Some(endpoint) => {
                let url =
                    url::Url::parse(endpoint).map_err(|e| config_error("endpoint", format!("{endpoint:?}: {e}")))?;
                let host = url.host_str().unwrap_or_default();
                if !matches!(url.scheme(), "http" | "https") || host.is_empty() {
                    return Err(config_error("endpoint", format!("{endpoint:?} must be an http(s) URL with a host")));
                }
                if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
                    return Err(config_error(
                        "endpoint",
                        format!("{endpoint:?}: no query, fragment or user in the endpoint (keys go in access_key_id)"),
                    ));
                }
                if url.scheme() == "http" && !self.allow_http {
                    return Err(config_error(
                        "allow_http",
                        format!("the endpoint {endpoint:?} is plain http: set allow_http = true to use it without TLS"),
                    ));
                }
                if self.virtual_hosted_style && !host.starts_with(&format!("{b}.")) {
                    return Err(config_error(
                        "endpoint",
                        format!(
                            "with virtual_hosted_style the endpoint names the bucket in its host \
                             (https://{b}.HOST), not {endpoint:?}"
                        ),
                    ));
                }
            }
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), None) => Err(config_error("secret_access_key", "is required with access_key_id")),
            (None, Some(_)) => Err(config_error("access_key_id", "is required with secret_access_key")),
            (Some(id), Some(_)) if id.trim().is_empty() => Err(config_error("access_key_id", "must not be empty")),
            _ => Ok(()),
        }
    }

    /// Where the credentials will come from, given the environment `env`.
    pub fn credential_source(&self, env: impl Fn(&str) -> Option<String>) -> S3Credentials {
        let set = |var: &str| env(var).is_some_and(|v| !v.is_empty());
        if self.access_key_id.is_some() {
            S3Credentials::Settings
        } else if set("AWS_ACCESS_KEY_ID") || set("AWS_SECRET_ACCESS_KEY") {
            S3Credentials::EnvironmentKeys
        } else if set("AWS_WEB_IDENTITY_TOKEN_FILE") && set("AWS_ROLE_ARN") {
            S3Credentials::WebIdentity
        } else if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            S3Credentials::EcsTaskRole
        } else if set("AWS_CONTAINER_CREDENTIALS_FULL_URI") && set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            S3Credentials::EksPodIdentity
        } else {
            S3Credentials::InstanceMetadata
        }
    }

    /// A warning when the environment suggests credentials tubewatch will not read (a profile).
    pub fn credential_warning(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        let profile = env("AWS_PROFILE").filter(|p| !p.is_empty())?;
        (self.credential_source(&env) == S3Credentials::InstanceMetadata).then(|| {
            format!(
                "AWS_PROFILE={profile} is set, but tubewatch does not read AWS profile files: export the \
                 profile's keys (`eval \"$(aws configure export-credentials --profile {profile} --format env)\"`) \
                 or set s3.access_key_id and s3.secret_access_key; without them the EC2 instance metadata \
                 service is asked"
            )
        })
    }

    /// Where the bucket is, for messages.
    fn location(&self) -> String {
        match (&self.endpoint, &self.region) {
            (Some(endpoint), _) => format!("S3 bucket {} at {endpoint}", self.bucket),
            (None, Some(region)) => format!("S3 bucket {} in AWS region {region}", self.bucket),
            (None, None) => format!("S3 bucket {}", self.bucket),
        }
    }
}

/// Why the blob store refused a request. Wrapped in the `anyhow::Error` the blob calls return
/// (`downcast_ref::<BlobError>()` finds it).
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error(
        "{location}: the bucket {bucket:?} does not exist (create it, or correct s3.bucket, s3.region or s3.endpoint)"
    )]
    NoBucket { location: String, bucket: String },
    #[error(
        "{location} refused the credentials ({code}): check s3.access_key_id and s3.secret_access_key, or the \
         AWS_* credentials in the environment"
    )]
    Credentials { location: String, code: String },
    #[error(
        "{location} denied {action} {key} ({code}): the credentials need s3:GetObject, s3:PutObject and s3:DeleteObject on the bucket"
    )]
    Denied { location: String, action: &'static str, key: String, code: String },
    #[error("{location} does not answer ({action} {key}): {source}")]
    Unreachable {
        location: String,
        action: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{location}: {action} {key}: {source}")]
    Other {
        location: String,
        action: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
}

/// The S3 error code (`<Code>NoSuchBucket</Code>`) an error's chain carries, if any.
fn s3_error_code(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if let Some((_, rest)) = text.split_once("<Code>")
            && let Some((code, _)) = rest.split_once("</Code>")
        {
            return Some(code.to_owned());
        }
        next = e.source();
    }
    None
}

/// Whether the error chain holds a failure to connect or a timeout.
fn is_unreachable(err: &(dyn std::error::Error + 'static)) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(http) = e.downcast_ref::<HttpError>()
            && matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Codes S3 (and compatible stores) answer when the credentials themselves are wrong.
const CREDENTIAL_CODES: &[&str] =
    &["InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidClientTokenId"];

impl Blobs {
    /// A local folder, created if missing.
    pub fn local(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating blob folder {}", dir.display()))?;
        let fs =
            LocalFileSystem::new_with_prefix(dir).with_context(|| format!("opening blob folder {}", dir.display()))?;
        Ok(Self {
            inner: Arc::new(fs),
            location: format!("blob folder {}", dir.display()).into(),
            bucket: None,
            local_permits: Some(Arc::new(Semaphore::new(LOCAL_OPERATIONS_AT_ONCE))),
        })
    }

    /// An S3-compatible bucket, credentials from `config` or else the process's AWS environment.
    /// Nothing is sent until the first request (see [`Blobs::check_writable`]).
    pub fn s3(config: &S3Config) -> anyhow::Result<Self> {
        Self::s3_with_env(config, |var| std::env::var(var).ok())
    }

    /// [`Blobs::s3`] with the environment read through `env`.
    pub fn s3_with_env(config: &S3Config, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        config.validate().map_err(|e| anyhow::anyhow!("s3.{}: {e}", e.field))?;
        let options = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(30));
        // A few quick retries of 5xx and dropped connections, not object_store's three minutes:
        // a check that cannot archive is retried by the queue.
        let retry =
            RetryConfig { backoff: BackoffConfig::default(), max_retries: 3, retry_timeout: Duration::from_secs(20) };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(config.region.as_deref().unwrap_or("us-east-1"))
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_client_options(options)
            .with_retry(retry);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
        }
        match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => {
                builder = builder.with_access_key_id(id).with_secret_access_key(secret);
            }
            _ => {
                for var in CREDENTIAL_VARIABLES {
                    if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                        let key: AmazonS3ConfigKey = var.to_ascii_lowercase().parse().context("an AWS variable")?;
                        builder = builder.with_config(key, value);
                    }
                }
            }
        }
        let store = builder.build().with_context(|| format!("configuring {}", config.location()))?;
        Ok(Self {
            inner: Arc::new(store),
            location: config.location().into(),
            bucket: Some(config.bucket.as_str().into()),
            local_permits: None,
        })
    }

    /// Where the blobs are, e.g. `S3 bucket tw at http://127.0.0.1:9000` or `blob folder ./blobs`.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The store's error in words: a missing bucket, refused credentials, no answer, or as it is.
    fn explain(&self, action: &'static str, key: &str, err: object_store::Error) -> anyhow::Error {
        let location = self.location.to_string();
        let code = s3_error_code(&err);
        let blob_error = match (&err, code) {
            (_, Some(code)) if code == "NoSuchBucket" => {
                BlobError::NoBucket { location, bucket: self.bucket.as_deref().unwrap_or_default().to_owned() }
            }
            (_, Some(code)) if CREDENTIAL_CODES.contains(&code.as_str()) => BlobError::Credentials { location, code },
            (object_store::Error::Unauthenticated { .. }, code) => {
                BlobError::Credentials { location, code: code.unwrap_or_else(|| "401".into()) }
            }
            (object_store::Error::PermissionDenied { .. }, code) => {
                BlobError::Denied { location, action, key: key.to_owned(), code: code.unwrap_or_else(|| "403".into()) }
            }
            _ if is_unreachable(&err) => BlobError::Unreachable { location, action, key: key.to_owned(), source: err },
            _ => BlobError::Other { location, action, key: key.to_owned(), source: err },
        };
        anyhow::Error::new(blob_error)
    }

    /// A permit for one operation on a local folder (`None` for a bucket, whose operations are
    /// requests, not threads).
    async fn local_permit(&self) -> Option<SemaphorePermit<'_>> {
        match &self.local_permits {
            Some(permits) => permits.acquire().await.ok(),
            None => None,
        }
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let path = ObjectPath::parse(key).with_context(|| format!("blob key {key:?}"))?;
        let _permit = self.local_permit().await;
        match self.inner.put(&path, PutPayload::from(bytes)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.explain("storing", key, e)),
        }
    }

    /// Whether the store takes a write: a small probe object is written and removed (for `/readyz`
    /// and at start).
    pub async fn check_writable(&self) -> anyhow::Result<()> {
        const PROBE: &str = "readyz/probe";
        let path = ObjectPath::from(PROBE);
        if let Err(e) = self.inner.put(&path, PutPayload::from_static(b"ok")).await {
            return Err(self.explain("writing the probe", PROBE, e));
        }
        match self.inner.delete(&path).await {
            // Another probe at the same moment removed it first.
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.explain("removing the probe", PROBE, e)),
        }
    }

    /// The blob's bytes, or `None` when there is no such blob (a missing bucket is an error).
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Bytes>> {
        let path = ObjectPath::parse(key).with_context(|| format!("blob key {key:?}"))?;
        let _permit = self.local_permit().await;
        let found = match self.inner.get(&path).await {
            Ok(found) => found,
            Err(e @ object_store::Error::NotFound { .. }) if s3_error_code(&e).as_deref() != Some("NoSuchBucket") => {
                return Ok(None);
            }
            Err(e) => return Err(self.explain("reading", key, e)),
        };
        match found.bytes().await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) => Err(self.explain("reading", key, e)),
        }
    }
}

/// The archive key of one size of a thumbnail, by the content hash of the small version:
/// `thumbnails/VIDEO/SHA256/SIZE.jpg`.
pub fn thumbnail_key(video: &VideoId, sha256: &str, size: &str) -> String {
    format!("thumbnails/{video}/{sha256}/{size}.jpg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(&dir.path().join("blobs")).unwrap();
        let video = VideoId::parse("dQw4w9WgXcQ").unwrap();
        let key = thumbnail_key(&video, "ab12", "default");
        assert_eq!(key, "thumbnails/dQw4w9WgXcQ/ab12/default.jpg");
        assert!(blobs.get(&key).await.unwrap().is_none());
        blobs.put(&key, vec![1, 2, 3]).await.unwrap();
        assert_eq!(blobs.get(&key).await.unwrap().unwrap().as_ref(), &[1, 2, 3]);
        assert!(dir.path().join("blobs/thumbnails/dQw4w9WgXcQ/ab12/default.jpg").exists());
        blobs.check_writable().await.unwrap();
        assert!(!dir.path().join("blobs/readyz/probe").exists(), "the probe is removed");
    }

    fn minio() -> S3Config {
        S3Config {
            bucket: "tubewatch".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            allow_http: true,
            access_key_id: Some("tubewatch".into()),
            secret_access_key: Some("very-secret".into()),
            ..S3Config::default()
        }
    }

    #[test]
    fn s3_settings_that_cannot_work_are_named() {
        minio().validate().unwrap();
        S3Config { bucket: "tw-blobs".into(), region: Some("eu-west-1".into()), ..S3Config::default() }
            .validate()
            .unwrap();
        let field = |config: S3Config| config.validate().unwrap_err().field;
        assert_eq!(
            field(S3Config { bucket: "tw".into(), region: Some("eu-west-1".into()), ..S3Config::default() }),
            "bucket"
        );
        assert_eq!(field(S3Config { bucket: "Blobs".into(), ..minio() }), "bucket");
        assert_eq!(
            field(S3Config { bucket: "tw-blobs".into(), ..S3Config::default() }),
            "region",
            "neither region nor endpoint"
        );
        assert_eq!(field(S3Config { region: Some("EU West".into()), ..minio() }), "region");
        assert_eq!(field(S3Config { allow_http: false, ..minio() }), "allow_http");
        assert_eq!(field(S3Config { endpoint: Some("minio:9000".into()), ..minio() }), "endpoint");
        assert_eq!(field(S3Config { endpoint: Some("ftp://minio".into()), ..minio() }), "endpoint");
        assert_eq!(field(S3Config { virtual_hosted_style: true, ..minio() }), "endpoint");
        let hosted =
            S3Config { virtual_hosted_style: true, endpoint: Some("http://tubewatch.minio:9000".into()), ..minio() };
        hosted.validate().unwrap();
        assert_eq!(field(S3Config { secret_access_key: None, ..minio() }), "secret_access_key");
        assert_eq!(field(S3Config { access_key_id: None, ..minio() }), "access_key_id");
        let shown = format!("{:?}", minio());
        assert!(!shown.contains("very-secret") && shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn credentials_come_from_the_settings_then_the_aws_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        let no_keys = S3Config { access_key_id: None, secret_access_key: None, ..minio() };
        assert_eq!(minio().credential_source(env(&[("AWS_ACCESS_KEY_ID", "x")])), S3Credentials::Settings);
        assert_eq!(no_keys.credential_source(env(&[("AWS_ACCESS_KEY_ID", "x")])), S3Credentials::EnvironmentKeys);
        assert_eq!(
            no_keys.credential_source(env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), ("AWS_ROLE_ARN", "arn:x")])),
            S3Credentials::WebIdentity
        );
        assert_eq!(
            no_keys.credential_source(env(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x")])),
            S3Credentials::EcsTaskRole
        );
        assert_eq!(no_keys.credential_source(env(&[])), S3Credentials::InstanceMetadata);
        let warning = no_keys.credential_warning(env(&[("AWS_PROFILE", "prod")])).unwrap();
        assert!(warning.contains("AWS_PROFILE=prod") && warning.contains("export-credentials"), "{warning}");
        assert_eq!(minio().credential_warning(env(&[("AWS_PROFILE", "prod")])), None, "keys in the settings");
        // Blobs are built without contacting the store.
        let blobs = Blobs::s3_with_env(&minio(), env(&[])).unwrap();
        assert_eq!(blobs.location(), "S3 bucket tubewatch at http://127.0.0.1:9000");
        assert!(!format!("{blobs:?}").contains("very-secret"));
    }
}
