//! Start-up checks that turn the usual ways a thread-per-core server cannot start (io_uring
//! disabled, memlock too low, a core that does not exist, a port in use, a data directory that
//! cannot be written) into one line that says how to fix it, before anything is created.

use crate::config::{Config, ShardCount};
use std::net::SocketAddr;
use std::path::Path;

/// The CPUs this process may run on, in order.
pub fn available_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1))
                .collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|c| libc::CPU_ISSET(*c, &set))
            .collect()
    }
}

/// The cores the shards will be pinned to, one per shard.
pub fn shard_cores(config: &Config) -> Result<Vec<usize>, String> {
    let cpus = available_cpus();
    if !config.shards.cores.is_empty() {
        for c in &config.shards.cores {
            if !cpus.contains(c) {
                return Err(format!(
                    "`shards.cores` names core {c}, but this process may only run on cores {cpus:?}; list existing cores or leave `shards.cores` empty"
                ));
            }
        }
        return Ok(config.shards.cores.clone());
    }
    let n = match config.shards.count {
        ShardCount::Number(n) => n,
        ShardCount::Word(_) => cpus.len().max(1),
    };
    if n > cpus.len() {
        return Err(format!(
            "`shards.count` is {n} but only {} cores are available ({cpus:?}); use `count = \"auto\"` or at most {}",
            cpus.len(),
            cpus.len()
        ));
    }
    Ok(cpus[..n].to_vec())
}

/// Checks that io_uring can be set up at all.
pub fn check_io_uring() -> Result<(), String> {
    // SAFETY: io_uring_params is plain data; the syscall either fails or returns a ring fd we close.
    unsafe {
        let mut params = [0u8; 120];
        let fd = libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr());
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!(
                "io_uring is not available ({e}); microlith needs Linux 5.8+ with io_uring enabled: check `sysctl kernel.io_uring_disabled` (must be 0) and that no seccomp profile (container runtime) blocks io_uring_setup"
            ));
        }
        libc::close(fd as i32);
    }
    Ok(())
}

/// Locked memory each shard needs: its registered io memory plus rings.
pub fn memlock_needed(config: &Config, shards: usize) -> u64 {
    (config.shards.io_memory_kib as u64 * 1024 + 256 * 1024) * shards as u64
}

/// Checks RLIMIT_MEMLOCK against what the shards will register.
pub fn check_memlock(config: &Config, shards: usize) -> Result<(), String> {
    let need = memlock_needed(config, shards);
    // SAFETY: getrlimit fills a plain struct.
    let limit = unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) != 0 {
            return Ok(());
        }
        r.rlim_cur
    };
    if limit != libc::RLIM_INFINITY && (limit as u64) < need {
        return Err(format!(
            "locked-memory limit is {} KiB but {shards} shards need {} KiB; raise it (`ulimit -l {}`, or LimitMEMLOCK= in the systemd unit), or lower `shards.io_memory_kib` or `shards.count`",
            limit / 1024,
            need / 1024,
            need / 1024
        ));
    }
    Ok(())
}

/// Fails if another socket already listens on `addr`'s port (on the same or a wildcard
/// address), as the kernel's table of TCP sockets shows it. Sockets in TIME_WAIT from a
/// previous run do not count (a restarted server must be able to bind at once).
pub fn port_is_free(addr: std::net::SocketAddr) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            if *state != "0A" {
                continue; // not LISTEN
            }
            let Some((ip_hex, port_hex)) = local.split_once(':') else {
                continue;
            };
            if u16::from_str_radix(port_hex, 16).ok() != Some(addr.port()) {
                continue;
            }
            let theirs_wildcard = ip_hex.chars().all(|c| c == '0');
            let same_v4 = match addr.ip() {
                std::net::IpAddr::V4(v4) => {
                    u32::from_str_radix(ip_hex, 16).ok().map(u32::from_be) == Some(u32::from(v4))
                }
                std::net::IpAddr::V6(_) => false,
            };
            if theirs_wildcard || addr.ip().is_unspecified() || same_v4 {
                return Err(std::io::Error::from(std::io::ErrorKind::AddrInUse));
            }
        }
    }
    Ok(())
}

/// Every address the node is configured to listen on, with the key that sets it.
pub fn listen_addrs(config: &Config) -> Result<Vec<(&'static str, SocketAddr)>, String> {
    let e = |e: crate::config::ConfigError| e.to_string();
    let mut addrs = vec![
        ("http.listen", config.http_addr().map_err(e)?),
        ("mqtt.listen", config.mqtt.addr().map_err(e)?),
    ];
    if config.tls.enabled() {
        addrs.push(("tls.https_listen", config.tls.https_addr().map_err(e)?));
        addrs.push(("tls.mqtt_listen", config.tls.mqtt_addr().map_err(e)?));
    }
    if config.cluster.enabled() {
        addrs.push(("cluster.listen", config.cluster.listen_addr().map_err(e)?));
    }
    Ok(addrs)
}

/// Fails, naming the key, if another process already listens on a configured port.
pub fn check_ports(config: &Config) -> Result<(), String> {
    for (key, addr) in listen_addrs(config)? {
        if let Err(e) = port_is_free(addr) {
            return Err(format!(
                "cannot listen on {addr} (`{key}`): {e}; another process is using the port (stop it, or choose another port)"
            ));
        }
    }
    Ok(())
}

/// Checks, without creating anything, that `storage.data_dir` is a directory this user may
/// write, or could be created: its nearest existing ancestor is a writable directory.
pub fn check_data_dir(dir: &Path) -> Result<(), String> {
    let fail = |why: String| {
        Err(format!(
            "`storage.data_dir` {}: {why}; create it or choose a directory this user may write",
            dir.display()
        ))
    };
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if !m.is_dir() => return fail(format!("{} is not a directory", at.display())),
            Ok(_) if !writable(at) => return fail(format!("{} is not writable", at.display())),
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(e) => return fail(format!("cannot read {}: {e}", at.display())),
        }
        at = match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
}

/// The process may create entries in directory `dir`.
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; access only reads it.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// What `serve` refuses before it creates anything: cores, io_uring, locked memory, ports,
/// the data directory. `check-config` runs it too.
pub fn check_machine(config: &Config) -> Result<Vec<usize>, String> {
    let cores = shard_cores(config)?;
    check_io_uring()?;
    check_memlock(config, cores.len())?;
    check_ports(config)?;
    check_data_dir(&config.storage.data_dir)?;
    Ok(cores)
}
