//! The correlation state on disk, so halves waiting across a restart still
//! stitch and known instances are not called cold again.
//!
//! ```text
//!  "SEAMCORR" | version u32 | crc32 u32 | length u64 | postcard payload
//! ```
//!
//! State added later follows the payload's first part in parts of its own
//! (nested invocations; then trace summaries still active and the traces
//! on flagged boundaries; then the rollups; then the joined traces by
//! time; then the spans stored as cold starts; then the span counts per
//! operation), inside the same length and checksum: a file
//! written before a part reads with that state empty, and a server that
//! predates a part reads a newer file and ignores the rest.
//!
//! The store writes it beside each seal (synced, then renamed into place),
//! so a crash mid-write leaves the previous one intact. A file that fails
//! its checksum is refused with an error naming it; the server then starts
//! with empty state rather than with wrong state.

use serde::{Deserialize, Serialize};

use crate::CorrelateError;
use crate::coldstart::{ColdStarts, NestedMarkers, Overlay};
use crate::config::CorrelationConfig;
use crate::flows::Flows;
use crate::nesting::Nesting;
use crate::rollup::Rollups;
use crate::stitch::{Entry, Pending};
use crate::traces::{ActiveTraces, SaidCold, TimedSet, TraceIndex};

const MAGIC: &[u8; 8] = b"SEAMCORR";
const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 4 + 8;

#[derive(Serialize)]
struct SavedRef<'a> {
    keys: &'a [String],
    pending: Vec<&'a Entry>,
    cold: &'a ColdStarts,
    flows: &'a Flows,
    overlay: &'a Overlay,
}

/// A checkpoint as read back.
#[derive(Deserialize)]
pub struct Saved {
    keys: Vec<String>,
    pending: Vec<Entry>,
    cold: ColdStarts,
    flows: Flows,
    overlay: Overlay,
    #[serde(skip)]
    later: Later,
    #[serde(skip)]
    latest: Latest,
    /// The part after [`Latest`].
    #[serde(skip)]
    rollups: Rollups,
    /// The part after the rollups.
    #[serde(skip)]
    joined: Option<TimedSet>,
    /// The part after the joined traces.
    #[serde(skip)]
    said_cold: Option<SaidCold>,
}

/// What follows the first part of the payload.
#[derive(Serialize, Deserialize, Default)]
struct Later {
    nesting: Nesting,
    nested: NestedMarkers,
}

#[derive(Serialize)]
struct LaterRef<'a> {
    nesting: &'a Nesting,
    nested: &'a NestedMarkers,
}

/// The part after [`Later`].
#[derive(Serialize, Deserialize, Default)]
struct Latest {
    active: ActiveTraces,
    index: TraceIndex,
}

#[derive(Serialize)]
struct LatestRef<'a> {
    active: &'a ActiveTraces,
    index: &'a TraceIndex,
}

pub(crate) fn encode(
    config: &CorrelationConfig,
    pending: &Pending,
    cold: &ColdStarts,
    nesting: &Nesting,
    flows: &Flows,
    overlay: &Overlay,
    (active, index, rollups): (&ActiveTraces, &TraceIndex, &Rollups),
) -> Result<Vec<u8>, CorrelateError> {
    let saved = SavedRef {
        keys: &config.keys,
        pending: pending.entries().collect(),
        cold,
        flows,
        overlay,
    };
    let encoding = |e: postcard::Error| CorrelateError::Corrupt {
        path: String::new(),
        why: format!("encoding: {e}"),
    };
    let payload = postcard::to_extend(&saved, Vec::new()).map_err(encoding)?;
    let later = LaterRef {
        nesting,
        nested: overlay.nested_markers(),
    };
    let payload = postcard::to_extend(&later, payload).map_err(encoding)?;
    let latest = LatestRef { active, index };
    let payload = postcard::to_extend(&latest, payload).map_err(encoding)?;
    let payload = postcard::to_extend(rollups, payload).map_err(encoding)?;
    let payload = postcard::to_extend(&index.joined, payload).map_err(encoding)?;
    let payload = postcard::to_extend(&index.said_cold, payload).map_err(encoding)?;
    let payload = postcard::to_extend(&rollups.operations, payload).map_err(encoding)?;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes what [`encode`] wrote; `source` names it in errors.
pub(crate) fn decode(bytes: &[u8], source: &str) -> Result<Saved, CorrelateError> {
    let corrupt = |why: &str| CorrelateError::Corrupt {
        path: source.to_owned(),
        why: why.to_owned(),
    };
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(corrupt("not a correlation checkpoint"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(corrupt(&format!("version {version}, expected {VERSION}")));
    }
    let crc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    let len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(corrupt("truncated"));
    }
    if crc32fast::hash(payload) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    let decoding = |e: postcard::Error| corrupt(&format!("decoding: {e}"));
    let (mut saved, rest): (Saved, _) = postcard::take_from_bytes(payload).map_err(decoding)?;
    if !rest.is_empty() {
        let (later, rest) = postcard::take_from_bytes(rest).map_err(decoding)?;
        saved.later = later;
        if !rest.is_empty() {
            let (latest, rest) = postcard::take_from_bytes(rest).map_err(decoding)?;
            saved.latest = latest;
            if !rest.is_empty() {
                let (rollups, rest) = postcard::take_from_bytes(rest).map_err(decoding)?;
                saved.rollups = rollups;
                if !rest.is_empty() {
                    let (joined, rest) = postcard::take_from_bytes(rest).map_err(decoding)?;
                    saved.joined = Some(joined);
                    if !rest.is_empty() {
                        let (said_cold, rest) =
                            postcard::take_from_bytes(rest).map_err(decoding)?;
                        saved.said_cold = Some(said_cold);
                        if !rest.is_empty() {
                            saved.rollups.operations =
                                postcard::from_bytes(rest).map_err(decoding)?;
                        }
                    }
                }
            }
        }
    }
    Ok(saved)
}

/// Installs a checkpoint, translating correlation values to the keys
/// configured now (a key removed from the config is dropped).
pub(crate) fn apply(
    saved: Saved,
    config: &CorrelationConfig,
    pending: &mut Pending,
    (cold, nesting): (&mut ColdStarts, &mut Nesting),
    flows: &mut Flows,
    overlay: &mut Overlay,
    (active, index, rollups): (&mut ActiveTraces, &mut TraceIndex, &mut Rollups),
) {
    let remap: Vec<Option<u16>> = saved
        .keys
        .iter()
        .map(|k| {
            config
                .keys
                .iter()
                .position(|c| c == k)
                .and_then(|i| u16::try_from(i).ok())
        })
        .collect();
    for mut entry in saved.pending {
        entry.half.values = entry
            .half
            .values
            .into_iter()
            .filter_map(|(i, v)| remap.get(usize::from(i)).copied().flatten().map(|i| (i, v)))
            .collect();
        pending.restore(entry, config);
    }
    *cold = saved.cold;
    *nesting = saved.later.nesting;
    *flows = saved.flows;
    *overlay = saved.overlay;
    overlay.set_nested_markers(saved.later.nested);
    overlay.rebuild();
    *active = saved.latest.active;
    *index = saved.latest.index;
    // State kept before the joined traces were: none of those joined up to
    // now is known by time, and a trace that starts later can only be
    // joined from here on.
    index.joined = saved.joined.unwrap_or_else(|| {
        if flows.is_empty() {
            return TimedSet::default();
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(i64::MAX, |d| {
                i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
            });
        TimedSet::unknown_until(now)
    });
    // Before the stored cold starts were kept, any trace that may hold
    // one may be missing from them.
    index.said_cold = saved.said_cold.unwrap_or_else(|| {
        if index.cold.is_empty() {
            SaidCold::default()
        } else {
            SaidCold::unknown()
        }
    });
    *rollups = saved.rollups;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state written before nested invocations were kept still reads.
    #[test]
    fn a_state_without_the_later_part_reads() {
        let config = CorrelationConfig::default();
        let bytes = encode(
            &config,
            &Pending::default(),
            &ColdStarts::default(),
            &Nesting::default(),
            &Flows::new(2, 2),
            &Overlay::default(),
            (
                &ActiveTraces::default(),
                &TraceIndex::default(),
                &Rollups::default(),
            ),
        )
        .unwrap();
        let payload = &bytes[HEADER..];
        let (_, rest) = postcard::take_from_bytes::<Saved>(payload).unwrap();
        assert!(!rest.is_empty(), "the later part is written");
        let first = &payload[..payload.len() - rest.len()];
        let mut old = Vec::new();
        old.extend_from_slice(MAGIC);
        old.extend_from_slice(&VERSION.to_le_bytes());
        old.extend_from_slice(&crc32fast::hash(first).to_le_bytes());
        old.extend_from_slice(&(first.len() as u64).to_le_bytes());
        old.extend_from_slice(first);
        let (old, new) = (decode(&old, "old").unwrap(), decode(&bytes, "new").unwrap());
        assert!(old.joined.is_none() && new.joined.is_some());
        assert!(old.said_cold.is_none() && new.said_cold.is_some());
    }
}
