//! Downloading a data set's files (see [`DataSource`]): tries each mirror in turn, streams into
//! a temporary file in the data set's folder while hashing, and renames it into place only
//! when its SHA-256 matches the source's. A failed or corrupt download leaves nothing behind.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{hex, DataSource, IdxFile};
use crate::error::{DataError, IoError};
use crate::fsutil;

/// What the download is doing, for a progress display.
#[derive(Debug, Clone)]
pub enum FetchEvent {
    Start {
        file: String,
        url: String,
        total: Option<u64>,
    },
    Progress {
        file: String,
        done: u64,
    },
    Failed {
        file: String,
        url: String,
        error: String,
    },
    Done {
        file: String,
        path: PathBuf,
    },
}

/// Downloads every file of `spec` missing from `dir` (created if needed, and removed again when
/// it was created and nothing could be downloaded into it) from `mirrors` (see
/// [`DataSource::mirrors`]). Present files are left alone (they are verified when loaded); a
/// decompressed file whose sum the source does not know counts as missing, so its `.gz` is
/// fetched beside it. Returns the files that were downloaded.
pub fn fetch_missing(
    dir: &Path,
    source: &DataSource,
    mirrors: &[String],
    progress: &dyn Fn(FetchEvent),
) -> Result<Vec<PathBuf>, DataError> {
    let missing: Vec<&IdxFile> = source
        .files
        .iter()
        .filter(|f| source.verifiable(dir, f).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(vec![]);
    }
    // The folders this call creates (the leaf and any missing parents), deepest first: a
    // failed fetch removes them again (remove_dir leaves one that a file got into).
    let created: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .collect();
    fs::create_dir_all(dir).map_err(IoError::at("create data directory", dir))?;
    let result: Result<Vec<PathBuf>, DataError> = missing
        .into_iter()
        .map(|f| fetch_one(dir, f, mirrors, progress))
        .collect();
    if result.is_err() {
        for d in &created {
            let _ = fs::remove_dir(d);
        }
    }
    result.map_err(|e| match e {
        DataError::Download { file, attempts, .. } => DataError::Download {
            file,
            attempts,
            hint: format!(
                "\ngive another mirror with --mirror URL (or set {}), or copy the four .gz files \
                 into {}",
                source.dataset.mirrors_env(),
                dir.display()
            ),
        },
        other => other,
    })
}

/// Downloads one file from the first mirror that serves it with the right checksum.
pub fn fetch_one(
    dir: &Path,
    file: &IdxFile,
    mirrors: &[String],
    progress: &dyn Fn(FetchEvent),
) -> Result<PathBuf, DataError> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        .user_agent(concat!("rnnsweep/", env!("CARGO_PKG_VERSION")))
        .build();
    let target = dir.join(file.gz_name());
    let mut attempts = Vec::new();
    for base in mirrors {
        let url = format!("{}/{}", base.trim_end_matches('/'), file.gz_name());
        match download_verified(&agent, &url, &target, file, progress) {
            Ok(()) => {
                progress(FetchEvent::Done {
                    file: file.gz_name(),
                    path: target.clone(),
                });
                return Ok(target);
            }
            Err(e) => {
                progress(FetchEvent::Failed {
                    file: file.gz_name(),
                    url: url.clone(),
                    error: e.clone(),
                });
                attempts.push(format!("  {url}: {e}"));
            }
        }
    }
    Err(DataError::Download {
        file: file.gz_name(),
        attempts: if attempts.is_empty() {
            "  (no mirrors given)".into()
        } else {
            attempts.join("\n")
        },
        hint: String::new(),
    })
}

/// Streams `url` into a temp file next to `target`, hashing as it goes; keeps it only if the
/// SHA-256 matches. Errors are returned as text for the per-mirror report.
fn download_verified(
    agent: &ureq::Agent,
    url: &str,
    target: &Path,
    file: &IdxFile,
    progress: &dyn Fn(FetchEvent),
) -> Result<(), String> {
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, r) => format!("HTTP {code} {}", r.status_text()),
        // The transport error's own text starts with the URL, which the caller names already.
        ureq::Error::Transport(t) => {
            let mut why = t.kind().to_string();
            for part in t
                .message()
                .map(String::from)
                .into_iter()
                .chain(std::error::Error::source(&t).map(crate::error::chain))
            {
                why.push_str(&format!(": {part}"));
            }
            why
        }
    })?;
    let total = resp.header("Content-Length").and_then(|v| v.parse().ok());
    progress(FetchEvent::Start {
        file: file.gz_name(),
        url: url.into(),
        total,
    });
    let tmp = fsutil::temp_path_for(target);
    let result = (|| -> Result<(), String> {
        let mut out =
            File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let mut reader = resp.into_reader();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut done = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("read failed after {done} bytes: {e}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
            done += n as u64;
            progress(FetchEvent::Progress {
                file: file.gz_name(),
                done,
            });
        }
        if let Some(t) = total {
            if t != done {
                return Err(format!("connection closed after {done} of {t} bytes"));
            }
        }
        let actual = hex(&hasher.finalize());
        if *actual != *file.gz_sha256 {
            return Err(format!(
                "checksum mismatch: SHA-256 {actual}, expected {} (file rejected)",
                file.gz_sha256
            ));
        }
        out.sync_all()
            .map_err(|e| format!("cannot sync {}: {e}", tmp.display()))?;
        drop(out);
        fsutil::persist(&tmp, target)
            .map_err(|e| format!("cannot rename into {}: {e}", target.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
