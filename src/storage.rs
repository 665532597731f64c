//! The upkeep that seals, compacts and expires the store's tables while
//! the server runs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use seam_collector::{MemoryGauge, now_unix_nano};
use seam_correlate::Note;
use seam_store::{SealError, Store, Writer};
use tracing::warn;

/// Once a second: tells correlation the time (halves whose window ran out
/// become orphans) and seals when hot data is big or old enough; every
/// `storage.housekeeping_interval`, compacts, applies retention and
/// deletes files out of the store.
///
/// Under memory pressure (resident memory past half of `memory_limit`)
/// hot rows are sealed early, once they hold a sixteenth of the limit:
/// sealing is what gives memory back, so the process stays inside the
/// limit instead of refusing exports until the next regular seal.
pub async fn upkeep(
    writer: Arc<Writer<Note>>,
    memory: Arc<MemoryGauge>,
    memory_limit: u64,
    stopped: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = writer.store().clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let housekeeping = store.config().housekeeping_interval;
    let mut last_housekeeping = tokio::time::Instant::now();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return Ok(()),
            _ = tick.tick() => {}
        }
        writer.tick(now_unix_nano());
        let pressed = memory.get() > memory_limit / 2 && store.hot_bytes() >= memory_limit / 16;
        if pressed || store.seal_due() {
            seal(&store).await?;
        }
        if last_housekeeping.elapsed() >= housekeeping {
            last_housekeeping = tokio::time::Instant::now();
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.compact() {
                    warn!(error = %e, "compacting sealed files; the files stay as they were");
                }
                if let Err(e) = store.enforce_retention(now_unix_nano()) {
                    warn!(error = %e, "applying retention");
                }
                store.collect_garbage(false);
            })
            .await?;
        }
    }
}

/// Seals hot rows (off the async workers); a failure is logged and the
/// rows stay in memory and in the log for the next attempt. Only a seal
/// task that died is an error.
pub async fn seal(store: &Arc<Store>) -> anyhow::Result<()> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.seal()).await? {
        Ok(_) => {}
        // Rows are lost from memory and only the log has them: stop, and a
        // start replays them.
        Err(e @ (SealError::Poisoned(_) | SealError::FollowerStopped)) => return Err(e.into()),
        Err(e) => warn!(error = %e, "sealing hot data; it stays in memory and in the log"),
    }
    Ok(())
}
