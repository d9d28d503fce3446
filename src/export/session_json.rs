//! `--output session-json:DIR`: one JSON document per session, in the seed's
//! structure (`session_id`, `created_at`, `session_metadata`, `totals`,
//! `session_time_steps` with their events and messages, `event_history`,
//! `message_history`), written to `DIR/<session id>.json`.

use super::session::Session;
use super::session_store::{Store, StoreError};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Writes each session to its own file in a folder.
pub struct SessionJsonStore {
    dir: PathBuf,
    written: AtomicU64,
}

impl SessionJsonStore {
    /// Creates `dir` (and its parents) if needed.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
        Ok(SessionJsonStore {
            dir: dir.to_path_buf(),
            written: AtomicU64::new(0),
        })
    }

    /// The file of a session: its id with anything but `[A-Za-z0-9_.-]` as `_`.
    pub fn file_of(&self, session_id: &str) -> PathBuf {
        let name: String = session_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{name}.json"))
    }
}

impl Store for SessionJsonStore {
    fn store(&self, sessions: &[Session]) -> Result<u64, StoreError> {
        let mut written = 0;
        for (i, s) in sessions.iter().enumerate() {
            let path = self.file_of(&s.session_id);
            let write = || -> std::io::Result<()> {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
                serde_json::to_writer_pretty(&mut f, s)?;
                f.write_all(b"\n")?;
                f.flush()
            };
            if let Err(e) = write() {
                return Err(StoreError {
                    error: anyhow::Error::new(e)
                        .context(format!("cannot write {}", path.display())),
                    lost_spans: sessions[i..].iter().map(|s| s.spans).sum(),
                });
            }
            self.written.fetch_add(1, Relaxed);
            written += s.spans;
        }
        Ok(written)
    }

    fn stored(&self) -> String {
        let n = self.written.load(Relaxed);
        format!(
            "{n} session file{} in {}",
            if n == 1 { "" } else { "s" },
            self.dir.display()
        )
    }

    fn close(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
