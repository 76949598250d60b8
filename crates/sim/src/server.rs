//! Serving a simulator over HTTP: binding an address, running the router until shut down, and
//! the handle that a caller keeps while it runs.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::sim::{SimConfig, Simulator};

impl Simulator {
    /// Builds and serves in one step: binds `addr` (e.g. `127.0.0.1:0`).
    pub async fn start(config: SimConfig, addr: SocketAddr) -> anyhow::Result<RunningSim> {
        Self::new(config).serve(addr).await
    }

    /// Serves this simulator on `addr` until the returned handle is shut down or dropped.
    pub async fn serve(self, addr: SocketAddr) -> anyhow::Result<RunningSim> {
        use anyhow::Context as _;
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the simulator to {addr}"))?;
        let local = listener.local_addr().context("reading the simulator's bound address")?;
        let base = self.inner.config.public_base.clone().unwrap_or_else(|| format!("http://{local}"));
        // The base is set once; a second serve of the same simulator keeps the first.
        let _ = self.inner.base.set(base.trim_end_matches('/').to_owned());
        let router = crate::routes::router(self.inner.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "simulator server stopped with an error");
            }
        });
        tracing::info!(base_url = %format!("http://{local}"), "simulator listening");
        Ok(RunningSim {
            base_url: format!("http://{local}"),
            addr: local,
            sim: self,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// A simulator being served. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSim {
    /// `http://127.0.0.1:PORT`: give it to the client as every YouTube/Google base URL.
    pub base_url: String,
    pub addr: SocketAddr,
    pub sim: Simulator,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningSim {
    pub fn sim(&self) -> &Simulator {
        &self.sim
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            // Graceful shutdown waits for open connections; a request hanging on an injected
            // fault would hold it for minutes, so give up after a moment.
            if tokio::time::timeout(std::time::Duration::from_secs(2), &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    /// Waits until the server ends (for the `sim` command: until Ctrl-C).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
