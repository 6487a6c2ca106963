//! A storage backend for redb that reads a log file and keeps every write in memory: the
//! "trial open" that lets the start-up check run redb's own read-write open (recovery after a
//! crash, the allocator state, the header it writes) on the real bytes without changing them.
//! It takes the file's real locks, so a log another process holds is refused as in use.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// Bytes per in-memory copy of a written piece of the file.
const CHUNK: u64 = 4096;

#[derive(Debug)]
struct Written {
    /// The file's length as redb sees it.
    len: u64,
    /// Bytes of the real file past this read as zeros (redb shrank the file).
    base_valid: u64,
    chunks: BTreeMap<u64, Box<[u8]>>,
}

/// The file underneath (read and locked only, never written) and the writes kept in memory.
#[derive(Debug)]
pub struct Overlay {
    file: FileBackend,
    written: Mutex<Written>,
}

impl Overlay {
    /// Over the file at `path`. It is opened read-write only so that redb's writer locks can be
    /// taken on it; nothing is ever written through it.
    pub fn new(path: &Path) -> std::io::Result<Overlay> {
        let f = File::options().read(true).write(true).open(path)?;
        let len = f.metadata()?.len();
        let file = FileBackend::new(f).map_err(std::io::Error::other)?;
        Ok(Overlay {
            file,
            written: Mutex::new(Written {
                len,
                base_valid: len,
                chunks: BTreeMap::new(),
            }),
        })
    }

    fn state(&self) -> std::io::Result<std::sync::MutexGuard<'_, Written>> {
        self.written
            .lock()
            .map_err(|_| std::io::Error::other("overlay lock poisoned"))
    }

    /// Read `out.len()` bytes at `offset` of the file as written so far.
    fn read_in(&self, w: &Written, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let mut done = 0usize;
        while done < out.len() {
            let pos = offset + done as u64;
            let chunk = pos / CHUNK * CHUNK;
            let within = (pos - chunk) as usize;
            let n = (CHUNK as usize - within).min(out.len() - done);
            let dst = &mut out[done..done + n];
            if let Some(c) = w.chunks.get(&chunk) {
                dst.copy_from_slice(&c[within..within + n]);
            } else {
                dst.fill(0);
                let end = (pos + n as u64).min(w.base_valid);
                if pos < end {
                    let m = (end - pos) as usize;
                    self.file.read(pos, &mut dst[..m])?;
                }
            }
            done += n;
        }
        Ok(())
    }
}

impl StorageBackend for Overlay {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.state()?.len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let w = self.state()?;
        self.read_in(&w, offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let mut w = self.state()?;
        if len < w.len {
            w.base_valid = w.base_valid.min(len);
            w.chunks.retain(|start, _| *start < len);
            let last = len / CHUNK * CHUNK;
            if let Some(c) = w.chunks.get_mut(&last) {
                c[(len - last) as usize..].fill(0);
            }
        }
        w.len = len;
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut w = self.state()?;
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let chunk = pos / CHUNK * CHUNK;
            let within = (pos - chunk) as usize;
            let n = (CHUNK as usize - within).min(data.len() - done);
            if !w.chunks.contains_key(&chunk) {
                let mut fresh = vec![0u8; CHUNK as usize].into_boxed_slice();
                self.read_in(&w, chunk, &mut fresh)?;
                w.chunks.insert(chunk, fresh);
            }
            if let Some(c) = w.chunks.get_mut(&chunk) {
                c[within..within + n].copy_from_slice(&data[done..done + n]);
            }
            done += n;
        }
        w.len = w.len.max(offset + data.len() as u64);
        Ok(())
    }

    fn close(&self) -> std::io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stay_in_memory_and_read_back_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        let o = Overlay::new(&path).unwrap();
        o.write(4090, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        o.write(12_000, &[9]).unwrap();
        let mut out = vec![0u8; 12];
        o.read(4088, &mut out).unwrap();
        assert_eq!(out, [7, 7, 1, 2, 3, 4, 5, 6, 7, 8, 7, 7]);
        assert_eq!(o.len().unwrap(), 12_001);
        let mut tail = vec![1u8; 2];
        o.read(11_999, &mut tail).unwrap();
        assert_eq!(
            tail,
            [0, 9],
            "past the file's end reads zeros, then the write"
        );
        o.set_len(5000).unwrap();
        o.set_len(6000).unwrap();
        let mut grown = vec![1u8; 4];
        o.read(4998, &mut grown).unwrap();
        assert_eq!(grown, [7, 7, 0, 0], "bytes past a shrink read as zeros");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            vec![7u8; 10_000],
            "the file is untouched"
        );
    }
}
