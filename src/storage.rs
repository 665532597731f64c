//! The store's tables as Seam lays them out, and the upkeep that seals,
//! compacts and expires them while the server runs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use seam_collector::now_unix_nano;
use seam_correlate::{Correlator, boundaries_schema, boundary_col, orphan_col, orphans_schema};
use seam_model::schema::{col, spans_schema};
use seam_store::{Layout, Store, TableSpec};
use tracing::warn;

fn layout(sort_by: &[&str], bloom: &[&str]) -> Layout {
    Layout {
        sort_by: sort_by.iter().map(|s| (*s).to_owned()).collect(),
        bloom: bloom.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// `spans`, `boundaries` and `orphans`. Sealed spans are sorted by trace
/// so a trace is one run of rows in one row group; boundaries by consumer
/// trace, with bloom filters on both trace ids for flow lookups.
pub fn tables() -> Vec<TableSpec> {
    vec![
        TableSpec {
            name: "spans".into(),
            schema: spans_schema(),
            time_column: col::START_TIME.into(),
            layout: layout(&[col::TRACE_ID, col::START_TIME], &[col::TRACE_ID]),
        },
        TableSpec {
            name: "boundaries".into(),
            schema: boundaries_schema(),
            time_column: boundary_col::CONSUMER_TIME.into(),
            layout: layout(
                &[boundary_col::CONSUMER_TRACE_ID, boundary_col::CONSUMER_TIME],
                &[
                    boundary_col::PRODUCER_TRACE_ID,
                    boundary_col::CONSUMER_TRACE_ID,
                ],
            ),
        },
        TableSpec {
            name: "orphans".into(),
            schema: orphans_schema(),
            time_column: orphan_col::TIME.into(),
            layout: layout(&[orphan_col::TRACE_ID], &[orphan_col::TRACE_ID]),
        },
    ]
}

/// How often sealed files are compacted and retention is applied.
const HOUSEKEEPING: Duration = Duration::from_secs(10);

/// Once a second: lets expired correlation halves go (orphans) and seals
/// when hot data is big or old enough; every [`HOUSEKEEPING`], compacts,
/// applies retention and deletes files out of the store.
pub async fn upkeep(
    store: Arc<Store>,
    correlator: Arc<Correlator>,
    stopped: impl Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_housekeeping = tokio::time::Instant::now();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        {
            // Expiry writes orphans and changes the state a seal captures.
            let _step = store.gate().enter();
            if let Err(e) = correlator.tick(now_unix_nano()) {
                warn!(error = %e, "expiring correlation state");
            }
        }
        if store.seal_due() {
            seal(&store, &correlator).await;
        }
        if last_housekeeping.elapsed() >= HOUSEKEEPING {
            last_housekeeping = tokio::time::Instant::now();
            let store = store.clone();
            let done = tokio::task::spawn_blocking(move || {
                if let Err(e) = store.compact() {
                    warn!(error = %e, "compacting sealed files");
                }
                if let Err(e) = store.enforce_retention(now_unix_nano()) {
                    warn!(error = %e, "applying retention");
                }
                store.collect_garbage(false);
            })
            .await;
            if let Err(e) = done {
                warn!(error = %e, "housekeeping task failed");
            }
        }
    }
}

/// Seals hot rows (off the async workers); a failure is logged and the
/// rows stay in memory and in the log for the next attempt.
pub async fn seal(store: &Arc<Store>, correlator: &Arc<Correlator>) {
    let (store, correlator) = (store.clone(), correlator.clone());
    match tokio::task::spawn_blocking(move || store.seal(correlator.as_ref())).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(error = %e, "sealing hot data; it stays in memory and in the log"),
        Err(e) => warn!(error = %e, "seal task failed"),
    }
}
