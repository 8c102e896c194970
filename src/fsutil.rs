//! Crash-safe file writing: every file the program produces is written to a temporary file in
//! the same directory, flushed to disk, then renamed over the target, so a reader sees either
//! the old complete file or the new complete file, never a torn one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A temporary sibling of `target` (same directory, so the final rename is atomic), unique per
/// process and call, so concurrent writers of the same target never share a temp file.
pub fn temp_path_for(target: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = format!(".{name}.{}-{n}.partial", std::process::id());
    target.with_file_name(tmp)
}

/// Writes `bytes` to `target` atomically (temp file, fsync, rename, fsync of the directory).
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path_for(target);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        persist(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Renames a finished temp file over `target` and syncs the directory entry.
pub fn persist(tmp: &Path, target: &Path) -> io::Result<()> {
    fs::rename(tmp, target)?;
    sync_dir(target.parent().unwrap_or(Path::new(".")));
    Ok(())
}

/// Best-effort fsync of a directory so a rename survives power loss (not supported everywhere).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// The program's folder in the user's cache folder (`~/.cache/rnnsweep` on Linux): the default
/// data folder, and `speed.json` (`trainer::speed`). None where the platform has no cache folder.
pub fn user_cache_root() -> Option<PathBuf> {
    dirs::cache_dir().map(|c| c.join("rnnsweep"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.txt")]);
    }

    #[test]
    fn concurrent_writers_of_one_target_never_tear_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shared.bin");
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_atomic(p, &[t; 4096]).unwrap();
                    }
                });
            }
        });
        let bytes = fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert!(
            bytes.iter().all(|b| *b == bytes[0]),
            "a torn file mixes writers"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn write_atomic_into_missing_dir_fails_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope").join("a.txt");
        assert!(write_atomic(&p, b"x").is_err());
        assert!(!p.exists());
    }
}
