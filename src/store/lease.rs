//! Leases: how processes sharing one results folder (shards, Slurm tasks, machines on NFS, a
//! second `sweep` started by hand) avoid running a cell twice. A worker claims a cell by
//! creating `leases/<cell id>.json` atomically (written to a temp file, then hard-linked into
//! place, which fails if the lease exists; link is atomic on NFS too). The lease names its
//! owner (host, pid, Slurm ids) and carries a heartbeat that a background thread refreshes
//! while the cell trains. A lease is stale when its owner is a process of this host that no
//! longer exists, or when its heartbeat is older than the time-to-live; a stale lease is taken
//! over by renaming it aside (only one taker's rename can succeed) and claiming afresh. A fresh
//! lease renamed aside by mistake (claimed between the look and the rename) is put back without
//! replacing anything; if it cannot be, it stays aside and the claim fails naming both paths.
//! `result.json` stays the only "finished" marker: leases only decide who works on a cell now.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{io, StoreError};
use crate::cluster::{hostname, process_alive, Origin};
use crate::error::IoError;
use crate::fsutil::{persist, temp_path_for};

/// Default time-to-live of a heartbeat: two minutes, long enough for a busy NFS server.
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);
/// Environment variable overriding the time-to-live, in seconds.
pub const TTL_ENV: &str = "RNNSWEEP_LEASE_TTL";

/// What a lease file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub cell: String,
    /// Unique per claim; the holder only refreshes or removes a lease with its own token.
    pub token: String,
    pub owner: Origin,
    /// Unix seconds.
    pub acquired: f64,
    pub heartbeat: f64,
}

/// Whether a lease still counts.
#[derive(Clone, Debug, PartialEq)]
pub enum Liveness {
    Live,
    /// Why it no longer counts.
    Stale(String),
}

/// Unix time in seconds.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `RNNSWEEP_LEASE_TTL` is set but is not a time-to-live.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{TTL_ENV}={value:?}: expected a positive number of seconds, e.g. 300 (unset it for the \
     default of {} s)",
    DEFAULT_TTL.as_secs()
)]
pub struct TtlError {
    /// The variable's value (lossily decoded when it is not Unicode).
    pub value: String,
}

/// The time-to-live from `RNNSWEEP_LEASE_TTL` (seconds), else `DEFAULT_TTL`.
pub fn ttl_from_env() -> Result<Duration, TtlError> {
    ttl_from(std::env::var_os(TTL_ENV).as_deref())
}

/// The time-to-live given the variable's value (None: unset).
fn ttl_from(var: Option<&std::ffi::OsStr>) -> Result<Duration, TtlError> {
    let Some(v) = var else {
        return Ok(DEFAULT_TTL);
    };
    v.to_str()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| TtlError {
            value: v.to_string_lossy().into_owned(),
        })
}

/// Judges a lease: stale if its owner ran on `this_host` and has exited, or if its heartbeat
/// is older than `ttl` at time `now`.
pub fn liveness(info: &LeaseInfo, now: f64, ttl: Duration, this_host: &str) -> Liveness {
    if info.owner.host == this_host && !process_alive(info.owner.pid) {
        return Liveness::Stale(format!("owner {} has exited", info.owner.describe()));
    }
    let age = now - info.heartbeat;
    if age > ttl.as_secs_f64() {
        return Liveness::Stale(format!(
            "no heartbeat from {} for {age:.0}s (time-to-live {:.0}s)",
            info.owner.describe(),
            ttl.as_secs_f64()
        ));
    }
    Liveness::Live
}

/// The outcome of a claim.
pub enum Claim {
    /// The cell is ours; the lease is released when dropped.
    Acquired(Lease),
    /// The cell is ours after taking over a stale lease (the old lease and why it was stale).
    TookOver(Lease, LeaseInfo, String),
    /// Someone else is working on it.
    Held(LeaseInfo),
}

/// A sweep's leases folder.
#[derive(Clone, Debug)]
pub struct Leases {
    dir: PathBuf,
    pub ttl: Duration,
    /// How often a held lease's heartbeat is refreshed.
    pub interval: Duration,
    host: String,
    /// Tests only: called right after a stale lease is renamed aside (with the lease's path and
    /// the aside path), to play the other workers of a race.
    #[cfg(test)]
    after_rename: Option<fn(&Path, &Path)>,
}

/// A held lease. Its heartbeat thread runs until it is dropped; dropping removes the file if
/// it is still ours.
pub struct Lease {
    path: PathBuf,
    token: String,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    lost: Arc<AtomicBool>,
}

impl Lease {
    /// Whether another worker took this lease over (our heartbeat had stopped counting).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if read_info(&self.path).is_some_and(|i| i.token == self.token) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn read_info(path: &Path) -> Option<LeaseInfo> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

fn token() -> String {
    use rand::Rng;
    format!(
        "{:08x}{:016x}",
        std::process::id(),
        rand::thread_rng().gen::<u64>()
    )
}

impl Leases {
    pub fn new(dir: PathBuf, ttl: Duration) -> Leases {
        Leases {
            dir,
            ttl,
            interval: (ttl / 6).max(Duration::from_millis(100)),
            host: hostname(),
            #[cfg(test)]
            after_rename: None,
        }
    }

    pub fn path(&self, cell_id: &str) -> PathBuf {
        self.dir.join(format!("{cell_id}.json"))
    }

    /// The lease on a cell, if any, with its liveness. An unreadable lease (being written by a
    /// filesystem without hard links) counts as live while its file is younger than the TTL.
    pub fn inspect(&self, cell_id: &str) -> Option<(Option<LeaseInfo>, Liveness)> {
        let path = self.path(cell_id);
        let meta = fs::metadata(&path).ok()?;
        match read_info(&path) {
            Some(info) => {
                let l = liveness(&info, now(), self.ttl, &self.host);
                Some((Some(info), l))
            }
            None => {
                let age = meta
                    .modified()
                    .ok()
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .unwrap_or_default();
                let l = if age > self.ttl {
                    Liveness::Stale(format!("unreadable lease, {:.0}s old", age.as_secs_f64()))
                } else {
                    Liveness::Live
                };
                Some((None, l))
            }
        }
    }

    /// Tries to make the cell ours.
    pub fn claim(&self, cell_id: &str, owner: &Origin) -> Result<Claim, StoreError> {
        fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let path = self.path(cell_id);
        let mut took_over: Option<(LeaseInfo, String)> = None;
        for _ in 0..4 {
            let t = now();
            let info = LeaseInfo {
                cell: cell_id.to_string(),
                token: token(),
                owner: owner.clone(),
                acquired: t,
                heartbeat: t,
            };
            if create_exclusive(&path, &info)? {
                let lease = self.hold(path, info)?;
                return Ok(match took_over {
                    Some((old, why)) => Claim::TookOver(lease, old, why),
                    None => Claim::Acquired(lease),
                });
            }
            // Someone holds it: live, or stale and ours to take over.
            let Some((current, live)) = self.inspect(cell_id) else {
                continue; // released meanwhile: try again
            };
            let Liveness::Stale(why) = live else {
                return Ok(Claim::Held(current.unwrap_or_else(|| LeaseInfo {
                    cell: cell_id.to_string(),
                    token: String::new(),
                    owner: Origin::default(),
                    acquired: 0.0,
                    heartbeat: 0.0,
                })));
            };
            // Rename the stale lease aside; of several takers only one rename succeeds.
            let aside = self.dir.join(format!(".{cell_id}.{}.stale", token()));
            match fs::rename(&path, &aside) {
                Ok(()) => {
                    #[cfg(test)]
                    if let Some(race) = self.after_rename {
                        race(&path, &aside);
                    }
                    let moved = read_info(&aside);
                    let same =
                        moved.as_ref().map(|m| &m.token) == current.as_ref().map(|c| &c.token);
                    if !same {
                        // A fresh claim landed between our look and the rename: put it back.
                        put_back(&aside, &path)?;
                        if let Some(m) = moved {
                            return Ok(Claim::Held(m));
                        }
                        continue;
                    }
                    let _ = fs::remove_file(&aside);
                    if let Some(old) = current {
                        took_over = Some((old, why));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("rename", &path)(e)),
            }
        }
        // Lost every race: treat as held by whoever is there now.
        match self.inspect(cell_id) {
            Some((Some(info), _)) => Ok(Claim::Held(info)),
            _ => Err(StoreError::Io(IoError::at("claim", &path)(
                std::io::Error::other("the lease kept changing hands; try again"),
            ))),
        }
    }

    /// Starts the heartbeat of a freshly created lease. A heartbeat that cannot start is an
    /// error (the lease file is removed again): without it the lease would look stale after
    /// one TTL and another worker would take the cell over while this one trains it.
    fn hold(&self, path: PathBuf, info: LeaseInfo) -> Result<Lease, StoreError> {
        let (tx, rx) = channel::<()>();
        let lost = Arc::new(AtomicBool::new(false));
        let (p, mut beat, every, flag) = (path.clone(), info.clone(), self.interval, lost.clone());
        let thread = std::thread::Builder::new()
            .name("lease-heartbeat".into())
            .spawn(move || loop {
                match rx.recv_timeout(every) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return, // released
                }
                if read_info(&p).map(|i| i.token) != Some(beat.token.clone()) {
                    flag.store(true, Ordering::Relaxed);
                    return;
                }
                beat.heartbeat = now();
                let tmp = temp_path_for(&p);
                let ok = fs::write(&tmp, serde_json::to_vec(&beat).expect("leases serialize"))
                    .and_then(|_| persist(&tmp, &p));
                if ok.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
            });
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(io("start the heartbeat thread for", &path)(e));
            }
        };
        Ok(Lease {
            path,
            token: info.token,
            stop: Some(tx),
            thread: Some(thread),
            lost,
        })
    }

    /// Every lease in the folder (cell id → info and liveness); for `status`.
    pub fn all(&self) -> Vec<(String, Option<LeaseInfo>, Liveness)> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<_> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(".json")?.to_string();
                if id.starts_with('.') {
                    return None;
                }
                let (info, l) = self.inspect(&id)?;
                Some((id, info, l))
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// Creates `path` holding `info` only if it does not exist; true if we created it. The content
/// is complete before the name appears (temp file + [`link_new`]).
fn create_exclusive(path: &Path, info: &LeaseInfo) -> Result<bool, StoreError> {
    let bytes = serde_json::to_vec(info).expect("leases serialize");
    let tmp = temp_path_for(path);
    fs::write(&tmp, &bytes).map_err(io("write", &tmp))?;
    let created = link_new(&tmp, path, &bytes);
    let _ = fs::remove_file(&tmp);
    created
}

/// Gives `src`'s content (`bytes`) the name `path` only if `path` does not exist, never
/// replacing a file there; true if it did. A hard link, or where the filesystem has no hard
/// links, a `create_new` file written with `bytes`.
fn link_new(src: &Path, path: &Path, bytes: &[u8]) -> Result<bool, StoreError> {
    match fs::hard_link(src, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(_) => match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut f) => {
                f.write_all(bytes).map_err(io("write", path))?;
                f.sync_all().map_err(io("sync", path))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io("create", path)(e)),
        },
    }
}

/// Puts another worker's lease, renamed aside to `aside` by mistake, back at `path`, then
/// removes the aside name. Nothing is overwritten: when `path` was claimed again meanwhile, or
/// the lease cannot be put back, it stays at `aside` and the error names both paths.
fn put_back(aside: &Path, path: &Path) -> Result<(), StoreError> {
    let kept = |source: std::io::Error| StoreError::LeaseAside {
        path: path.to_owned(),
        aside: aside.to_owned(),
        source,
    };
    let bytes = fs::read(aside).map_err(kept)?;
    match link_new(aside, path, &bytes) {
        Ok(true) => {
            // The lease is back in place; a leftover aside name is ignored by every reader.
            let _ = fs::remove_file(aside);
            Ok(())
        }
        Ok(false) => Err(kept(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the cell was claimed again meanwhile",
        ))),
        Err(e) => Err(kept(std::io::Error::other(crate::error::chain(&e)))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn ttl_is_read_from_the_variable_or_defaults() {
        use std::ffi::OsStr;
        assert_eq!(ttl_from(None), Ok(DEFAULT_TTL));
        assert_eq!(
            ttl_from(Some(OsStr::new(" 2.5 "))),
            Ok(Duration::from_millis(2500))
        );
        for bad in ["0", "-3", "soon", "inf", ""] {
            let e = ttl_from(Some(OsStr::new(bad))).unwrap_err();
            assert_eq!(e.value, bad);
            assert!(
                e.to_string()
                    .starts_with(&format!("{TTL_ENV}={bad:?}: expected a positive number")),
                "{e}"
            );
        }
    }

    fn foreign(cell: &str, heartbeat_age: f64) -> LeaseInfo {
        LeaseInfo {
            cell: cell.into(),
            token: "t0".into(),
            owner: Origin {
                host: "elsewhere.invalid".into(),
                pid: 1,
                ..Origin::default()
            },
            acquired: now() - heartbeat_age,
            heartbeat: now() - heartbeat_age,
        }
    }

    #[test]
    fn one_claim_wins_and_release_frees_the_cell() {
        let tmp = tempfile::tempdir().unwrap();
        let leases = Leases::new(tmp.path().join("leases"), Duration::from_secs(60));
        let me = Origin::current();
        let Claim::Acquired(lease) = leases.claim("c1", &me).unwrap() else {
            panic!("first claim must win")
        };
        assert!(matches!(leases.claim("c1", &me).unwrap(), Claim::Held(_)));
        assert_eq!(leases.all().len(), 1);
        drop(lease);
        assert!(leases.all().is_empty(), "released on drop");
        assert!(matches!(
            leases.claim("c1", &me).unwrap(),
            Claim::Acquired(_)
        ));
    }

    #[test]
    fn concurrent_claims_have_exactly_one_winner() {
        let tmp = tempfile::tempdir().unwrap();
        let leases = Leases::new(tmp.path().join("leases"), Duration::from_secs(60));
        let wins = std::sync::atomic::AtomicUsize::new(0);
        let held = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    if let Claim::Acquired(l) = leases.claim("c", &Origin::current()).unwrap() {
                        wins.fetch_add(1, Ordering::SeqCst);
                        held.lock().unwrap().push(l);
                    }
                });
            }
        });
        assert_eq!(wins.into_inner(), 1);
    }

    #[test]
    fn heartbeat_keeps_a_lease_fresh() {
        let tmp = tempfile::tempdir().unwrap();
        let mut leases = Leases::new(tmp.path().join("leases"), Duration::from_millis(600));
        leases.interval = Duration::from_millis(50);
        let Claim::Acquired(_lease) = leases.claim("c", &Origin::current()).unwrap() else {
            panic!()
        };
        let first = read_info(&leases.path("c")).unwrap();
        // Watch until the lease is older than its time-to-live: it must stay live throughout.
        let t0 = std::time::Instant::now();
        loop {
            let (info, live) = leases.inspect("c").unwrap();
            let info = info.unwrap();
            assert_eq!(live, Liveness::Live, "the heartbeat keeps it live");
            if now() - info.acquired > 1.5 * leases.ttl.as_secs_f64() {
                assert!(info.heartbeat > first.heartbeat);
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "test hung");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn stale_leases_are_taken_over_live_ones_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let leases = Leases::new(tmp.path().join("leases"), Duration::from_secs(30));
        fs::create_dir_all(tmp.path().join("leases")).unwrap();
        // Another host, recent heartbeat: held.
        fs::write(
            leases.path("a"),
            serde_json::to_vec(&foreign("a", 5.0)).unwrap(),
        )
        .unwrap();
        match leases.claim("a", &Origin::current()).unwrap() {
            Claim::Held(i) => assert_eq!(i.owner.host, "elsewhere.invalid"),
            _ => panic!("a live foreign lease must be respected"),
        }
        // Another host, heartbeat older than the TTL: taken over.
        fs::write(
            leases.path("b"),
            serde_json::to_vec(&foreign("b", 90.0)).unwrap(),
        )
        .unwrap();
        match leases.claim("b", &Origin::current()).unwrap() {
            Claim::TookOver(_, old, why) => {
                assert_eq!(old.token, "t0");
                assert!(why.contains("no heartbeat"), "{why}");
            }
            _ => panic!("a stale lease must be taken over"),
        }
        // This host, owner exited: taken over at once whatever the heartbeat.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut dead = foreign("c", 0.0);
        dead.owner = Origin {
            host: hostname(),
            pid,
            ..Origin::default()
        };
        fs::write(leases.path("c"), serde_json::to_vec(&dead).unwrap()).unwrap();
        match leases.claim("c", &Origin::current()).unwrap() {
            Claim::TookOver(_, _, why) => assert!(why.contains("has exited"), "{why}"),
            _ => panic!("a dead owner's lease must be taken over"),
        }
    }

    #[test]
    fn a_lease_taken_over_is_noticed_and_not_removed_by_its_old_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let mut leases = Leases::new(tmp.path().join("leases"), Duration::from_secs(60));
        leases.interval = Duration::from_millis(30);
        let Claim::Acquired(lease) = leases.claim("c", &Origin::current()).unwrap() else {
            panic!()
        };
        fs::write(
            leases.path("c"),
            serde_json::to_vec(&foreign("c", 0.0)).unwrap(),
        )
        .unwrap();
        // The next heartbeat notices (the limit only stops a hung test).
        let t0 = std::time::Instant::now();
        while !lease.lost() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the takeover was never noticed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(lease);
        let (info, _) = leases.inspect("c").expect("the new holder's lease stays");
        assert_eq!(info.unwrap().token, "t0");
    }

    /// Sets up a stale lease on "c" and claims it, with `race` playing other workers between
    /// the rename aside and what follows it. Returns the claim and the leases of the folder
    /// by file name.
    fn claim_racing(
        race: fn(&Path, &Path),
    ) -> (Result<Claim, StoreError>, BTreeMap<String, LeaseInfo>) {
        let tmp = tempfile::tempdir().unwrap();
        let mut leases = Leases::new(tmp.path().join("leases"), Duration::from_secs(30));
        leases.after_rename = Some(race);
        fs::create_dir_all(tmp.path().join("leases")).unwrap();
        fs::write(
            leases.path("c"),
            serde_json::to_vec(&foreign("c", 90.0)).unwrap(),
        )
        .unwrap();
        let claim = leases.claim("c", &Origin::current());
        let files = fs::read_dir(tmp.path().join("leases"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter_map(|p| {
                let name = p.file_name()?.to_string_lossy().into_owned();
                Some((name, read_info(&p)?))
            })
            .collect();
        (claim, files)
    }

    /// What the rename moved aside was not the stale lease: a fresh claim ("fresh") landed
    /// between the look and the rename.
    fn fresh_claim_moved_aside(_path: &Path, aside: &Path) {
        let fresh = LeaseInfo {
            token: "fresh".into(),
            ..foreign("c", 0.0)
        };
        fs::write(aside, serde_json::to_vec(&fresh).unwrap()).unwrap();
    }

    #[test]
    fn a_fresh_lease_renamed_aside_is_put_back() {
        let (claim, files) = claim_racing(fresh_claim_moved_aside);
        match claim.unwrap() {
            Claim::Held(info) => assert_eq!(info.token, "fresh"),
            _ => panic!("the fresh claim holds the cell"),
        }
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files["c.json"].token, "fresh");
    }

    #[test]
    fn a_fresh_lease_that_cannot_be_put_back_is_kept_and_the_claim_fails() {
        // After the rename a third worker claims the cell: the fresh lease cannot go back, and
        // must neither vanish nor replace the third worker's.
        fn and_a_third_claim(path: &Path, aside: &Path) {
            fresh_claim_moved_aside(path, aside);
            let third = LeaseInfo {
                token: "third".into(),
                ..foreign("c", 0.0)
            };
            fs::write(path, serde_json::to_vec(&third).unwrap()).unwrap();
        }
        let (claim, files) = claim_racing(and_a_third_claim);
        let Err(e) = claim else {
            panic!("the claim must fail")
        };
        let msg = crate::error::chain(&e);
        assert!(msg.contains("it is kept at"), "{msg}");
        assert!(msg.contains("claimed again meanwhile"), "{msg}");
        assert_eq!(files["c.json"].token, "third", "{files:?}");
        assert!(
            files
                .iter()
                .any(|(name, i)| name != "c.json" && i.token == "fresh"),
            "the fresh lease is kept: {files:?}"
        );
    }

    #[test]
    fn liveness_follows_heartbeat_age_for_other_hosts() {
        let ttl = Duration::from_secs(5);
        assert_eq!(
            liveness(&foreign("x", 1.0), now(), ttl, "here"),
            Liveness::Live
        );
        let Liveness::Stale(why) = liveness(&foreign("x", 10.0), now(), ttl, "here") else {
            panic!("10 s without heartbeat with a 5 s TTL is stale")
        };
        assert!(why.contains("elsewhere.invalid:1"), "{why}");
    }
}
