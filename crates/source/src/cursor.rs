//! The durable cursor of a source: Jetstream's `time_us` of the last event whose lines the
//! sink acknowledged. [`CursorStore`] is where it is kept: a file ([`CursorFile`]), or in
//! cluster mode the shared KV bucket (`crate::leased`).
//!
//! The file holds one decimal number and is replaced atomically (written to a temporary
//! file beside it, synced, renamed over it, and the directory synced), so a crash leaves
//! the old cursor or the new one, never a torn one.

use std::fs;
use std::future::Future;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Where a source keeps its cursor.
pub trait CursorStore: Send + Sync {
    /// The saved cursor; `None` when none was saved yet.
    fn load(&self) -> impl Future<Output = io::Result<Option<u64>>> + Send;
    /// Saves `time_us` durably: when this returns `Ok`, a crash keeps it.
    fn save(&self, time_us: u64) -> impl Future<Output = io::Result<()>> + Send;
}

impl CursorStore for CursorFile {
    async fn load(&self) -> io::Result<Option<u64>> {
        self.load_now()
    }

    async fn save(&self, time_us: u64) -> io::Result<()> {
        let file = self.clone();
        tokio::task::spawn_blocking(move || file.save_now(time_us))
            .await
            .map_err(|e| io::Error::other(e.to_string()))?
    }
}

/// A cursor kept in one file.
#[derive(Debug, Clone)]
pub struct CursorFile {
    path: PathBuf,
}

impl CursorFile {
    /// The cursor at `path` (its directory is created at the first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where it is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved cursor, read now (blocking); `None` when none was saved yet. A file that
    /// does not hold a cursor is an error naming it, rather than a silent start from now.
    pub fn load_now(&self) -> io::Result<Option<u64>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        text.trim().parse::<u64>().map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold a cursor (a number of microseconds): {:?}; \
                     remove it to start from the live tail",
                    self.path.display(),
                    text.chars().take(40).collect::<String>()
                ),
            )
        })
    }

    /// Saves `time_us` durably, now (blocking, with two syncs).
    pub fn save_now(&self, time_us: u64) -> io::Result<()> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir)?;
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".tmp");
        let temporary = dir.join(name);
        let mut file = fs::File::create(&temporary)?;
        writeln!(file, "{time_us}")?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, &self.path)?;
        // The rename itself is durable once the directory is synced.
        #[cfg(unix)]
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_cursor_is_loaded_back_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = CursorFile::new(dir.path().join("state/jetstream-cursor"));
        assert_eq!(cursor.load_now().unwrap(), None);
        cursor.save_now(1_725_911_162_329_308).unwrap();
        assert_eq!(cursor.load_now().unwrap(), Some(1_725_911_162_329_308));
        cursor.save_now(1_725_911_162_400_000).unwrap();
        assert_eq!(cursor.load_now().unwrap(), Some(1_725_911_162_400_000));
        let names: Vec<_> = fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["jetstream-cursor"],
            "no temporary file is left behind"
        );
    }

    #[test]
    fn a_file_without_a_cursor_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        fs::write(&path, "yesterday\n").unwrap();
        let error = CursorFile::new(&path).load_now().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error.to_string().contains("does not hold a cursor"),
            "{error}"
        );
        assert!(error.to_string().contains("cursor"), "{error}");
    }
}
