//! The blob store for archived thumbnails: a local folder (embedded default) or an S3-compatible
//! bucket, through `object_store`. Keys are predictable, so a retried archive overwrites the same
//! object with the same bytes.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tubewatch_core::VideoId;

#[derive(Debug, Clone)]
pub struct Blobs {
    inner: Arc<dyn ObjectStore>,
}

/// Where an S3-compatible bucket is and how to sign in to it.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: bool,
}

impl Blobs {
    /// A local folder, created if missing.
    pub fn local(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating blob folder {}", dir.display()))?;
        let fs =
            LocalFileSystem::new_with_prefix(dir).with_context(|| format!("opening blob folder {}", dir.display()))?;
        Ok(Self { inner: Arc::new(fs) })
    }

    pub fn s3(config: &S3Config) -> anyhow::Result<Self> {
        let mut builder =
            AmazonS3Builder::from_env().with_bucket_name(&config.bucket).with_allow_http(config.allow_http);
        if let Some(v) = &config.endpoint {
            builder = builder.with_endpoint(v);
        }
        if let Some(v) = &config.region {
            builder = builder.with_region(v);
        }
        if let Some(v) = &config.access_key_id {
            builder = builder.with_access_key_id(v);
        }
        if let Some(v) = &config.secret_access_key {
            builder = builder.with_secret_access_key(v);
        }
        Ok(Self { inner: Arc::new(builder.build().context("configuring the S3 blob store")?) })
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let path = ObjectPath::parse(key).with_context(|| format!("blob key {key:?}"))?;
        self.inner.put(&path, PutPayload::from(bytes)).await.with_context(|| format!("storing blob {key}"))?;
        Ok(())
    }

    /// Whether the store takes a write: a small probe object is written and removed (for `/readyz`).
    pub async fn check_writable(&self) -> anyhow::Result<()> {
        let path = ObjectPath::from("readyz/probe");
        self.inner.put(&path, PutPayload::from_static(b"ok")).await.context("writing a probe blob")?;
        match self.inner.delete(&path).await {
            // Another probe at the same moment removed it first.
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).context("removing the probe blob"),
        }
    }

    /// The blob's bytes, or `None` when there is no such blob.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Bytes>> {
        let path = ObjectPath::parse(key).with_context(|| format!("blob key {key:?}"))?;
        match self.inner.get(&path).await {
            Ok(found) => Ok(Some(found.bytes().await.with_context(|| format!("reading blob {key}"))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading blob {key}")),
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
}
