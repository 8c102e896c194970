//! A cell's checkpoint files: `runs/<cell id>/checkpoints/step-<steps>.ckpt`. Each is written
//! atomically (temp file, fsync, rename) and framed by a header line and a BLAKE3 checksum of
//! its contents, so a file torn by a crash or a lost write is recognised and skipped. The newest
//! [`KEEP`] are kept: when the newest cannot be used, the one before it is. What a checkpoint
//! holds is the trainer's (`trainer::fit::checkpoint`); this module only stores bytes.

use std::fs;
use std::path::{Path, PathBuf};

use super::{io, StoreError};
use crate::fsutil::write_atomic;

/// The first bytes of every checkpoint file.
const MAGIC: &[u8] = b"rnnsweep checkpoint\n";
/// Length of the checksum at the end of a file.
const HASH_LEN: usize = 32;
/// How many checkpoints of a cell are kept.
pub const KEEP: usize = 2;

/// What [`CheckpointFiles::newest`] found: the newest usable checkpoint (the step count from
/// its name, and the decoded value), and every newer file skipped.
#[derive(Debug, PartialEq)]
pub struct Found<T> {
    pub newest: Option<(u64, T)>,
    pub ignored: Vec<Ignored>,
}

/// The checkpoint folder of one cell.
#[derive(Clone, Debug)]
pub struct CheckpointFiles {
    dir: PathBuf,
}

/// A checkpoint file that was not used, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Ignored {
    pub path: PathBuf,
    pub why: String,
}

impl CheckpointFiles {
    pub fn at(dir: &Path) -> Self {
        CheckpointFiles {
            dir: dir.to_owned(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, steps: u64) -> PathBuf {
        self.dir.join(format!("step-{steps:012}.ckpt"))
    }

    /// Writes the checkpoint taken after `steps` optimizer steps, then removes all but the
    /// newest [`KEEP`] (best effort: an old file left behind only costs disk, and the new one
    /// is written). Returns the file written.
    pub fn save(&self, steps: u64, payload: &[u8]) -> Result<PathBuf, StoreError> {
        fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + payload.len() + HASH_LEN);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(blake3::hash(payload).as_bytes());
        let path = self.path_of(steps);
        write_atomic(&path, &bytes).map_err(io("write", &path))?;
        for (_, old) in self.list().unwrap_or_default().into_iter().skip(KEEP) {
            let _ = fs::remove_file(&old);
        }
        Ok(path)
    }

    /// The checkpoint files, newest (most steps) first. A missing folder has none.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("list", &self.dir)(e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io("list", &self.dir))?;
            let name = entry.file_name();
            let steps = name
                .to_str()
                .and_then(|n| n.strip_prefix("step-"))
                .and_then(|n| n.strip_suffix(".ckpt"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(steps) = steps {
                found.push((steps, entry.path()));
            }
        }
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        Ok(found)
    }

    /// The contents of one file, checked: its header and checksum must match.
    pub fn read(path: &Path) -> Result<Vec<u8>, String> {
        let bytes = fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        let body = bytes
            .strip_prefix(MAGIC)
            .ok_or("it is not an rnnsweep checkpoint (no header)")?;
        if body.len() < HASH_LEN {
            return Err(format!("it is cut short ({} bytes)", bytes.len()));
        }
        let (payload, hash) = body.split_at(body.len() - HASH_LEN);
        if blake3::hash(payload).as_bytes() != hash {
            return Err(format!(
                "its checksum does not match its contents ({} bytes; torn or damaged)",
                bytes.len()
            ));
        }
        Ok(payload.to_vec())
    }

    /// The newest checkpoint that reads back intact and that `decode` accepts, and every newer
    /// file skipped, with why.
    pub fn newest<T>(
        &self,
        decode: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<Found<T>, StoreError> {
        let mut ignored = Vec::new();
        for (steps, path) in self.list()? {
            match Self::read(&path).and_then(|payload| decode(&payload)) {
                Ok(value) => {
                    return Ok(Found {
                        newest: Some((steps, value)),
                        ignored,
                    })
                }
                Err(why) => ignored.push(Ignored { path, why }),
            }
        }
        Ok(Found {
            newest: None,
            ignored,
        })
    }

    /// Removes the folder and every checkpoint in it (a finished cell needs none).
    pub fn remove_all(&self) -> Result<(), StoreError> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &self.dir)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[u8]) -> Result<String, String> {
        String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
    }

    #[test]
    fn keeps_the_newest_two_and_falls_back_past_a_torn_one() {
        let tmp = tempfile::tempdir().unwrap();
        let files = CheckpointFiles::at(&tmp.path().join("checkpoints"));
        assert_eq!(
            files.newest(text).unwrap(),
            Found {
                newest: None,
                ignored: vec![]
            }
        );
        for steps in [10, 20, 30] {
            files
                .save(steps, format!("state at {steps}").as_bytes())
                .unwrap();
        }
        let listed: Vec<u64> = files.list().unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(listed, vec![30, 20], "only the newest two are kept");
        let Found {
            newest: got,
            ignored,
        } = files.newest(text).unwrap();
        assert_eq!(got, Some((30, "state at 30".to_string())));
        assert!(ignored.is_empty());

        // Torn: the newest file lost its end. The one before it is used, the torn one named.
        let newest = files.path_of(30);
        let bytes = fs::read(&newest).unwrap();
        fs::write(&newest, &bytes[..bytes.len() - 5]).unwrap();
        let Found {
            newest: got,
            ignored,
        } = files.newest(text).unwrap();
        assert_eq!(got, Some((20, "state at 20".to_string())));
        assert_eq!(ignored.len(), 1);
        assert_eq!(ignored[0].path, newest);
        assert!(ignored[0].why.contains("checksum"), "{}", ignored[0].why);

        // A flipped byte, an empty file, a file the decoder refuses: all skipped, with why.
        let mut flipped = fs::read(files.path_of(20)).unwrap();
        flipped[MAGIC.len() + 2] ^= 1;
        fs::write(files.path_of(20), &flipped).unwrap();
        let Found {
            newest: got,
            ignored,
        } = files.newest(text).unwrap();
        assert_eq!(got, None);
        assert_eq!(ignored.len(), 2);
        fs::write(files.path_of(40), b"").unwrap();
        let why = &files.newest(text).unwrap().ignored[0].why;
        assert!(why.contains("no header"), "{why}");
        files.save(50, &[0xff, 0xfe]).unwrap();
        let Found {
            newest: got,
            ignored,
        } = files.newest(text).unwrap();
        assert_eq!(got, None);
        assert!(ignored[0].why.contains("utf-8"), "{:?}", ignored[0]);

        assert!(!files.list().unwrap().is_empty());
        files.remove_all().unwrap();
        assert!(!files.dir().exists());
        files.remove_all().unwrap();
    }
}
