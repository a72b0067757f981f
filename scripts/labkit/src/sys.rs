//! Facts from the kernel and the machine: `/proc`, tools on `PATH`, capabilities.

use std::path::PathBuf;

/// Bit of `CAP_NET_RAW` in the capability masks of `/proc/<pid>/status`.
const CAP_NET_RAW: u32 = 13;

/// Path of `tool` on `PATH`, if any.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Panics with the install command when `tool` (a Debian package of the same name) is missing.
pub fn require_tool(tool: &str) -> PathBuf {
    which(tool).unwrap_or_else(|| {
        panic!("`{tool}` is not installed: run `sudo apt-get install {tool}` (or scripts/install-tools.sh)")
    })
}

/// Panics with the install command when `strace` is missing.
pub fn require_strace() -> PathBuf {
    require_tool("strace")
}

/// Whether this process may open raw sockets (`CAP_NET_RAW` in its effective set).
pub fn has_net_raw() -> bool {
    status_field("self", "CapEff")
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_RAW) != 0)
}

/// Panics with the fix when this process may not open raw sockets.
pub fn require_net_raw() {
    if !has_net_raw() {
        panic!(
            "raw sockets need CAP_NET_RAW: run the tests as root, inside `unshare -rn sh -c 'ip link set lo up && cargo test'`, or grant it with `sudo setcap cap_net_raw+ep <binary>`"
        );
    }
}

/// A field of `/proc/<pid>/status` (for example `VmRSS`, `VmHWM`, `Threads`), without its name.
pub fn status_field(pid: &str, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == field).then(|| value.trim().to_string())
    })
}

/// A `kB` field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`...).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    status_field(&pid.to_string(), field)?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Number of open file descriptors of `pid` (entries of `/proc/<pid>/fd`).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Threads of `pid`, from `/proc/<pid>/status`.
pub fn thread_count(pid: u32) -> Option<usize> {
    status_field(&pid.to_string(), "Threads")?.parse().ok()
}

/// User plus system CPU time of `pid` in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Whether the current user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_status() {
        let pid = std::process::id();
        assert!(status_kib(pid, "VmRSS").unwrap() > 0);
        assert!(thread_count(pid).unwrap() >= 1);
        assert!(fd_count(pid) >= 3);
        assert!(cpu_ticks(pid).is_some());
    }

    #[test]
    fn finds_sh_on_path() {
        assert!(which("sh").is_some());
        assert!(which("no-such-tool-anywhere").is_none());
    }

    #[test]
    #[should_panic(expected = "apt-get install no-such-tool")]
    fn missing_tool_names_the_fix() {
        require_tool("no-such-tool");
    }
}
