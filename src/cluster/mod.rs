//! Running one sweep from many processes: which slice of the plan this process takes (`Shard`,
//! from `--shard I/N` or Slurm's array variables), who this process is (`Origin`: host, pid,
//! Slurm job and task, recorded in leases and run records), whether a process is alive, and the
//! sbatch script for a Slurm job array (`sbatch`). `--shard` keeps a text error (clap prints it
//! after the flag); Slurm's variables that make no shard are a [`SlurmEnvError`].

pub mod sbatch;

use serde::{Deserialize, Serialize};

/// A stable slice of a plan: cells whose index ≡ `index` (mod `count`). Striding rather than
/// cutting the plan into blocks spreads expensive variants over all shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shard {
    /// 0-based, below `count`.
    pub index: usize,
    pub count: usize,
}

/// For clap's `--shard`: the text is what clap prints after "invalid value".
impl std::str::FromStr for Shard {
    type Err = String;
    /// "I/N" with 0 ≤ I < N.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Slurm's array variables are set but do not make a shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlurmEnvError {
    #[error("{var}={value:?} is not a whole number")]
    NotANumber { var: &'static str, value: String },
    #[error(
        "SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor \
         SLURM_ARRAY_TASK_MAX is; pass --shard I/N"
    )]
    NoCount,
    #[error(
        "SLURM_ARRAY_TASK_ID={id} is outside the array ({min}..{end}); \
         use a contiguous --array range or pass --shard I/N"
    )]
    OutsideArray { id: usize, min: usize, end: usize },
}

impl Shard {
    pub fn contains(&self, cell_index: usize) -> bool {
        cell_index % self.count == self.index
    }

    /// The shard of a Slurm array task, from `SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT`
    /// (or `SLURM_ARRAY_TASK_MIN`/`_MAX` where the count is missing). None outside an array.
    pub fn from_slurm_env(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Shard>, SlurmEnvError> {
        let num = |var: &'static str| -> Result<Option<usize>, SlurmEnvError> {
            match get(var) {
                None => Ok(None),
                Some(value) => match value.trim().parse() {
                    Ok(n) => Ok(Some(n)),
                    Err(_) => Err(SlurmEnvError::NotANumber { var, value }),
                },
            }
        };
        let Some(id) = num("SLURM_ARRAY_TASK_ID")? else {
            return Ok(None);
        };
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let count = match (num("SLURM_ARRAY_TASK_COUNT")?, num("SLURM_ARRAY_TASK_MAX")?) {
            (Some(c), _) => c,
            (None, Some(max)) if max >= min => max - min + 1,
            _ => return Err(SlurmEnvError::NoCount),
        };
        let index =
            id.checked_sub(min)
                .filter(|i| *i < count)
                .ok_or(SlurmEnvError::OutsideArray {
                    id,
                    min,
                    end: min + count,
                })?;
        Ok(Some(Shard { index, count }))
    }
}

/// Who runs a cell: this process, and its Slurm job when there is one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub host: String,
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_array_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_array_task_id: Option<String>,
}

impl Origin {
    /// This process.
    pub fn current() -> Origin {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Origin {
            host: hostname(),
            pid: std::process::id(),
            slurm_job_id: var("SLURM_JOB_ID"),
            slurm_array_job_id: var("SLURM_ARRAY_JOB_ID"),
            slurm_array_task_id: var("SLURM_ARRAY_TASK_ID"),
        }
    }

    /// "node1:4242" or "node1:4242 (slurm 1234_5)".
    pub fn describe(&self) -> String {
        let slurm = match (
            &self.slurm_array_job_id,
            &self.slurm_array_task_id,
            &self.slurm_job_id,
        ) {
            (Some(a), Some(t), _) => format!(" (slurm {a}_{t})"),
            (_, _, Some(j)) => format!(" (slurm {j})"),
            _ => String::new(),
        };
        format!("{}:{}{slurm}", self.host, self.pid)
    }
}

/// This machine's name (as `hostname` prints it).
pub fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            if end > 0 {
                return String::from_utf8_lossy(&buf[..end]).into_owned();
            }
        }
    }
    std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Whether a process with this pid exists on this machine. Where that cannot be known, true
/// (the lease's heartbeat age then decides).
pub fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        // SAFETY: signal 0 only checks for existence and permission; nothing is delivered.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn parses_and_checks_shards() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let s = Shard { index: 1, count: 3 };
        let mine: Vec<usize> = (0..10).filter(|&i| s.contains(i)).collect();
        assert_eq!(mine, vec![1, 4, 7]);
    }

    #[test]
    fn shards_partition_the_plan() {
        let n = 4;
        for cell in 0..37 {
            let owners = (0..n)
                .filter(|&i| Shard { index: i, count: n }.contains(cell))
                .count();
            assert_eq!(owners, 1);
        }
    }

    #[test]
    fn reads_slurm_array_variables() {
        assert_eq!(Shard::from_slurm_env(env(&[])), Ok(None));
        assert_eq!(
            Shard::from_slurm_env(env(&[
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "5")
            ])),
            Ok(Some(Shard { index: 2, count: 5 }))
        );
        // Without a count: MIN and MAX; 1-based arrays work too.
        assert_eq!(
            Shard::from_slurm_env(env(&[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_MAX", "8")
            ])),
            Ok(Some(Shard { index: 0, count: 8 }))
        );
        assert_eq!(
            Shard::from_slurm_env(env(&[("SLURM_ARRAY_TASK_ID", "3")])),
            Err(SlurmEnvError::NoCount)
        );
        let outside = Shard::from_slurm_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]))
        .unwrap_err();
        assert_eq!(
            outside.to_string(),
            "SLURM_ARRAY_TASK_ID=9 is outside the array (0..4); use a contiguous --array range \
             or pass --shard I/N"
        );
        assert_eq!(
            Shard::from_slurm_env(env(&[("SLURM_ARRAY_TASK_ID", "x1")])),
            Err(SlurmEnvError::NotANumber {
                var: "SLURM_ARRAY_TASK_ID",
                value: "x1".into()
            })
        );
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
        assert!(!hostname().is_empty());
    }
}
