//! Writing an upload durably: bytes go to a hidden `.part` file next to their final place,
//! hashed and counted as they come; `commit` fsyncs it, renames it to its final name and
//! fsyncs the directory. Only then is the event appended, so a crash leaves at worst an
//! unreferenced file (swept at the next start), never a referenced half file. Dropping an
//! uncommitted upload removes its `.part` file.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tunewright_schemas::{ctx, ErrorCode, Failure};

/// Suffix of files being written.
pub const PART_SUFFIX: &str = ".part";

pub fn write_failed(name: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(
        ErrorCode::FileUploadFailed,
        ctx! {"filename" => name.chars().take(120).collect::<String>(), "reason" => "the data directory could not be written"},
    )
    .caused_by(e.to_string())
}

/// An I/O error while writing `path`: a full disk is `STORAGE_FULL` (507) with the directory
/// and its free space (docs/storage.md); anything else is `write_failed`.
pub fn io_failed(name: &str, path: &Path, e: std::io::Error) -> Failure {
    use tunewright_events::store::space;
    if !space::is_full(&e) {
        return write_failed(name, e);
    }
    let dir = path.parent().unwrap_or(path);
    let free = space::free_bytes(dir)
        .map(|b| b.to_string())
        .unwrap_or_else(|| "unknown".into());
    Failure::new(
        ErrorCode::StorageFull,
        ctx! {
            "filename" => name.chars().take(120).collect::<String>(),
            "path" => dir.display().to_string(),
            "free_bytes" => free,
            "reason" => format!("writing '{}' failed", name.chars().take(120).collect::<String>())
        },
    )
    .caused_by(e.to_string())
}

pub struct PartFile {
    name: String,
    part: PathBuf,
    dest: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    len: u64,
}

impl PartFile {
    /// Start writing what will become `dest` (its directory is created).
    pub async fn create(dest: PathBuf, name: &str) -> Result<PartFile, Failure> {
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_failed(name, &dest, e))?;
        let file_name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let part = dir.join(format!(".{file_name}{PART_SUFFIX}"));
        let file = tokio::fs::File::create(&part)
            .await
            .map_err(|e| io_failed(name, &part, e))?;
        Ok(PartFile {
            name: name.into(),
            part,
            dest,
            file: Some(file),
            hasher: Sha256::new(),
            len: 0,
        })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), Failure> {
        let Some(f) = self.file.as_mut() else {
            return Err(write_failed(&self.name, "the upload was already committed"));
        };
        f.write_all(chunk)
            .await
            .map_err(|e| io_failed(&self.name, &self.part, e))?;
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Push written bytes to the file (so the `.part` file can be read back).
    pub async fn flush(&mut self) -> Result<(), Failure> {
        if let Some(f) = self.file.as_mut() {
            f.flush()
                .await
                .map_err(|e| io_failed(&self.name, &self.part, e))?;
        }
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn part_path(&self) -> &Path {
        &self.part
    }

    /// fsync, rename into place, fsync the directory: `(size, sha256 hex)`.
    pub async fn commit(mut self) -> Result<(u64, String), Failure> {
        let Some(mut f) = self.file.take() else {
            return Err(write_failed(&self.name, "the upload was already committed"));
        };
        f.flush()
            .await
            .map_err(|e| io_failed(&self.name, &self.part, e))?;
        f.sync_all()
            .await
            .map_err(|e| io_failed(&self.name, &self.part, e))?;
        drop(f);
        tokio::fs::rename(&self.part, &self.dest)
            .await
            .map_err(|e| write_failed(&self.name, e))?;
        if let Some(dir) = self.dest.parent() {
            let dir = dir.to_path_buf();
            let synced =
                tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all()).await;
            if let Ok(Err(e)) | Err(e) = synced.map_err(std::io::Error::other) {
                let _ = std::fs::remove_file(&self.dest);
                return Err(write_failed(&self.name, e));
            }
        }
        // Renamed: nothing left for Drop to remove.
        self.part = PathBuf::new();
        let digest = std::mem::take(&mut self.hasher).finalize();
        Ok((self.len, hex::encode(digest)))
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.part.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// Remove `.part` files left by a crash under `dir` (recursively).
pub fn sweep_parts(dir: &Path) -> usize {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => removed += sweep_parts(&path),
            Ok(t) if t.is_file() => {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.')
                    && name.ends_with(PART_SUFFIX)
                    && std::fs::remove_file(&path).is_ok()
                {
                    removed += 1;
                }
            }
            _ => {}
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commit_renames_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("files").join("f1");
        let mut p = PartFile::create(dest.clone(), "a.txt").await.unwrap();
        p.write(b"hello").await.unwrap();
        let part = p.part_path().to_path_buf();
        assert!(part.exists());
        let (len, sha) = p.commit().await.unwrap();
        assert_eq!(len, 5);
        assert_eq!(
            sha,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(!part.exists());
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
    }

    #[tokio::test]
    async fn dropped_uploads_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f2");
        let mut p = PartFile::create(dest.clone(), "a.txt").await.unwrap();
        p.write(b"half").await.unwrap();
        let part = p.part_path().to_path_buf();
        drop(p);
        assert!(!part.exists());
        assert!(!dest.exists());
    }

    #[test]
    fn sweep_removes_only_parts() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("p/files");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(".x.part"), b"1").unwrap();
        std::fs::write(sub.join("keep"), b"1").unwrap();
        assert_eq!(sweep_parts(dir.path()), 1);
        assert!(sub.join("keep").exists());
    }
}
