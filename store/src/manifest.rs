//! The manifest: which sealed files make up each table, where in the
//! write-ahead log replay starts, and which state file goes with that
//! point. Replacing it (write a temporary file, sync, rename) is the one
//! step that commits a seal, a compaction or a retention pass: a crash
//! before it leaves the previous manifest, whose files are all still there.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::table::SealedFile;

pub(crate) const NAME: &str = "MANIFEST.json";
const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub version: u32,
    /// The first write-ahead log segment not sealed: replay starts there.
    pub wal_start: u64,
    /// The state file captured at `wal_start`, in the segments directory.
    pub state: Option<String>,
    /// The id the next sealed file gets.
    pub next_id: u64,
    /// Sealed files per table, oldest first.
    pub tables: BTreeMap<String, Vec<SealedFile>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    /// The manifest was renamed into place but its directory could not be
    /// synced: it is the manifest now, and a power loss may bring the
    /// previous one back.
    #[error("{path}: the manifest is in place but syncing its directory failed: {source}")]
    NotDurable { path: String, source: io::Error },
    #[error("{path}: not a manifest Seam can read: {why}")]
    Invalid { path: String, why: String },
}

impl Manifest {
    /// Reads the manifest in `dir`; none yet is an empty store.
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        let path = dir.join(NAME);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Self {
                    version: VERSION,
                    next_id: 1,
                    ..Self::default()
                });
            }
            Err(source) => {
                return Err(ManifestError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let manifest: Self =
            serde_json::from_slice(&bytes).map_err(|e| ManifestError::Invalid {
                path: path.display().to_string(),
                why: e.to_string(),
            })?;
        if manifest.version != VERSION {
            return Err(ManifestError::Invalid {
                path: path.display().to_string(),
                why: format!("version {}, expected {VERSION}", manifest.version),
            });
        }
        Ok(manifest)
    }

    /// Replaces the manifest in `dir`, durably. On
    /// [`ManifestError::NotDurable`] the new manifest is in place but may
    /// not survive a power loss: the caller must treat it as committed and
    /// delete nothing either manifest names.
    pub fn save(&self, dir: &Path) -> Result<(), ManifestError> {
        let bytes = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        write_atomic(&dir.join(NAME), &bytes).map_err(|e| match e {
            AtomicWriteError::Before { path, source } => ManifestError::Io {
                path: path.display().to_string(),
                source,
            },
            AtomicWriteError::NotDurable { path, source } => ManifestError::NotDurable {
                path: path.display().to_string(),
                source,
            },
        })
    }

    /// Every file name the manifest refers to, relative to the segments
    /// directory.
    pub fn referenced(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .tables
            .iter()
            .flat_map(|(table, files)| files.iter().map(move |f| file_name(table, f.id)))
            .collect();
        names.extend(self.state.clone());
        names
    }
}

/// Where a table's sealed file `id` lives, relative to the segments directory.
pub(crate) fn file_name(table: &str, id: u64) -> String {
    format!("{table}/{id:020}.parquet")
}

/// Why [`write_atomic`] failed: before the file took its name (nothing
/// changed), or after (the new file is in place, not known durable).
#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError {
    #[error("{}: {source}", .path.display())]
    Before {
        path: std::path::PathBuf,
        source: io::Error,
    },
    #[error("{}: syncing the directory after a rename failed: {source}", .path.display())]
    NotDurable {
        path: std::path::PathBuf,
        source: io::Error,
    },
}

/// Writes `bytes` to `path` through a synced temporary file and a rename,
/// then syncs the directory so the rename itself is durable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
    let tmp = path.with_extension("tmp");
    let before = |source| AtomicWriteError::Before {
        path: tmp.clone(),
        source,
    };
    let mut file = std::fs::File::create(&tmp).map_err(before)?;
    file.write_all(bytes).map_err(before)?;
    file.sync_all().map_err(before)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|source| AtomicWriteError::Before {
        path: path.to_owned(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    #[cfg(test)]
    let synced = injected::sync_after_rename(path).and_then(|()| sync_dir(dir));
    #[cfg(not(test))]
    let synced = sync_dir(dir);
    synced.map_err(|source| AtomicWriteError::NotDurable {
        path: dir.to_owned(),
        source,
    })
}

/// Makes renames, creations and deletions in `dir` durable: until the
/// directory is synced, a power loss can take a renamed file back to its
/// old name, or lose a new file whose data was synced.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Faults a test injects into [`write_atomic`].
#[cfg(test)]
pub(crate) mod injected {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    /// Files whose next rename into place is followed by a failed
    /// directory sync, as on a disk that fails fsync.
    static FAIL_SYNC_AFTER_RENAME: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub(crate) fn fail_sync_after_rename(path: PathBuf) {
        FAIL_SYNC_AFTER_RENAME.lock().unwrap().push(path);
    }

    pub(super) fn sync_after_rename(path: &Path) -> std::io::Result<()> {
        let mut failing = FAIL_SYNC_AFTER_RENAME.lock().unwrap();
        match failing.iter().position(|p| p == path) {
            Some(i) => {
                failing.remove(i);
                Err(std::io::Error::other(
                    "injected: fsync of the directory failed",
                ))
            }
            None => Ok(()),
        }
    }
}
