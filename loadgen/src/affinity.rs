//! Which cores the load generator runs on: parses `--cores` lists (`1`, `0,2`, `2-5`) and
//! pins each worker thread to its own core so the server under test keeps the others.

use anyhow::{bail, Context, Result};

/// Parses a core list such as `1`, `0,2` or `2-5,7`. Empty means "all cores".
pub fn parse_cores(text: &str) -> Result<Vec<usize>> {
    let mut cores = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a
                .trim()
                .parse()
                .with_context(|| format!("--cores {text}: '{part}' is not a range like 2-5"))?;
            let b: usize = b
                .trim()
                .parse()
                .with_context(|| format!("--cores {text}: '{part}' is not a range like 2-5"))?;
            if b < a {
                bail!("--cores {text}: range '{part}' is backwards");
            }
            cores.extend(a..=b);
        } else {
            cores.push(
                part.parse()
                    .with_context(|| format!("--cores {text}: '{part}' is not a core number"))?,
            );
        }
    }
    let available = available_cores();
    for c in &cores {
        if *c >= available {
            bail!(
                "--cores {text}: core {c} does not exist (this machine has cores 0-{})",
                available - 1
            );
        }
    }
    cores.sort_unstable();
    cores.dedup();
    Ok(cores)
}

/// Number of logical cores the OS reports.
pub fn available_cores() -> usize {
    core_affinity::get_core_ids()
        .map(|v| v.len())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// The worker plan: one worker per listed core, or `threads` unpinned workers when no
/// cores were given.
#[derive(Clone, Debug)]
pub struct Placement {
    pub cores: Vec<usize>,
    pub threads: usize,
}

impl Placement {
    pub fn new(cores: Vec<usize>, threads: Option<usize>) -> Result<Self> {
        let threads = match (threads, cores.len()) {
            (Some(0), _) => bail!("--threads must be at least 1"),
            (Some(t), 0) => t,
            (Some(t), n) if t != n => {
                bail!("--threads {t} disagrees with --cores ({n} cores): give one worker per core or drop --threads")
            }
            (_, 0) => 1,
            (_, n) => n,
        };
        Ok(Placement { cores, threads })
    }

    /// Prepares the calling thread for worker `index`: pins it (when cores were given)
    /// and sets its timer slack to 1 ns so timed waits for intended send times wake on
    /// time instead of up to 50 µs late (the Linux default slack).
    pub fn pin(&self, index: usize) {
        if let Some(core) = self.cores.get(index) {
            core_affinity::set_for_current(core_affinity::CoreId { id: *core });
        }
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    }

    /// Confines the calling thread (and every thread it starts later, such as the progress
    /// reporter) to the listed cores, so no part of loadgen runs on the server's cores.
    pub fn confine_current_thread(&self) {
        if self.cores.is_empty() {
            return;
        }
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for c in &self.cores {
                libc::CPU_SET(*c, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }

    /// Human description for `threads` workers actually started.
    pub fn describe_n(&self, threads: usize) -> String {
        if self.cores.is_empty() {
            format!("{threads} thread(s), unpinned")
        } else {
            let list: Vec<String> = self
                .cores
                .iter()
                .take(threads)
                .map(|c| c.to_string())
                .collect();
            format!("{threads} thread(s) pinned to cores {}", list.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        assert_eq!(parse_cores("0").unwrap(), vec![0]);
        assert_eq!(parse_cores("").unwrap(), Vec::<usize>::new());
        assert!(parse_cores("x").unwrap_err().to_string().contains("'x'"));
        assert!(parse_cores("9999")
            .unwrap_err()
            .to_string()
            .contains("9999"));
    }
}
