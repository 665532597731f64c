//! The server's long-running tasks as one supervised set: receivers, the
//! API, upkeep, memory sampling, the log's sync and the correlation thread.
//! A task that ends before shutdown was asked for leaves the server
//! serving half a pipeline, so the first such end is fatal: `/readyz`
//! turns 503 with the reason, every task is stopped, and the process exits
//! with an error (an orchestrator restarts it).

use std::future::Future;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::error;

/// A task's name and how it ended.
type Ended = (&'static str, anyhow::Result<()>);

pub struct Tasks {
    set: JoinSet<Ended>,
    stop: watch::Sender<bool>,
}

impl Default for Tasks {
    fn default() -> Self {
        Self {
            set: JoinSet::new(),
            stop: watch::Sender::new(false),
        }
    }
}

impl Tasks {
    /// A future that resolves when the tasks are told to stop.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    /// Runs `task` as `name`; it should end only once [`Tasks::stopped`]
    /// resolves.
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.set.spawn(async move { (name, task.await) });
    }

    /// Waits for `shutdown` or for a task to end, whichever comes first.
    /// `None` means shutdown was asked for; `Some(reason)` that a task
    /// ended on its own.
    pub async fn supervise(&mut self, shutdown: impl Future<Output = ()>) -> Option<String> {
        tokio::select! {
            () = shutdown => None,
            Some(ended) = self.set.join_next() => {
                let reason = match ended {
                    Ok((name, Ok(()))) => format!("{name} stopped unexpectedly"),
                    Ok((name, Err(e))) => format!("{name} failed: {e:#}"),
                    Err(e) if e.is_panic() => format!("a task panicked: {e}"),
                    Err(e) => format!("a task was cancelled: {e}"),
                };
                error!(%reason, "a stage of the server stopped; shutting down");
                Some(reason)
            }
        }
    }

    /// Tells every task to stop and waits for them; returns the failures.
    pub async fn stop(mut self) -> Vec<String> {
        let _ = self.stop.send(true);
        let mut failures = Vec::new();
        while let Some(ended) = self.set.join_next().await {
            match ended {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(e))) => failures.push(format!("{name}: {e:#}")),
                Err(e) => failures.push(format!("a task: {e}")),
            }
        }
        failures
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_task_that_ends_early_is_reported_and_the_others_are_stopped() {
        let mut tasks = Tasks::default();
        let others_stopped = Arc::new(AtomicBool::new(false));
        let stopped = tasks.stopped();
        let flag = others_stopped.clone();
        tasks.spawn("receiver", async move {
            stopped.await;
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        tasks.spawn("upkeep", async { anyhow::bail!("the disk went away") });
        let reason = tasks.supervise(std::future::pending()).await;
        assert_eq!(reason.as_deref(), Some("upkeep failed: the disk went away"));
        assert!(tasks.stop().await.is_empty());
        assert!(others_stopped.load(Ordering::SeqCst), "told to stop");
    }

    #[tokio::test]
    async fn shutdown_ends_supervision_and_tasks_finish_cleanly() {
        let mut tasks = Tasks::default();
        let stopped = tasks.stopped();
        tasks.spawn("api", async move {
            stopped.await;
            Ok(())
        });
        let reason = tasks.supervise(async {}).await;
        assert_eq!(reason, None);
        assert!(tasks.stop().await.is_empty());
    }

    #[tokio::test]
    async fn a_panic_is_a_reason_too() {
        let mut tasks = Tasks::default();
        tasks.spawn("correlation", async { panic!("a bug") });
        let reason = tasks.supervise(std::future::pending()).await.unwrap();
        assert!(reason.contains("panicked"), "{reason}");
    }
}
