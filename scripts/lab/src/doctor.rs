//! `cargo lab doctor`: is this machine ready for the course? Each missing piece comes with the
//! command that fixes it. The same checks decide what `verify` must start or install.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::Duration;

use crate::ui;

/// One finding of the doctor.
#[derive(Debug)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// The command that fixes it, when it is not ok.
    pub fix: Option<String>,
    /// Needed by some lab (a failure of an optional check is only a warning).
    pub required: bool,
}

fn check(name: &str, ok: bool, detail: String, fix: &str, required: bool) -> Check {
    Check {
        name: name.to_string(),
        ok,
        detail,
        fix: (!ok).then(|| fix.to_string()),
        required,
    }
}

/// Whether `tool` is on PATH.
pub fn has_tool(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// Whether something accepts TCP connections at the host and port of `url`.
pub fn reachable(url: &str, default_port: u16) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:{default_port}")
    };
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/course".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Whether `unshare` can give a process a network namespace of its own (in a user namespace
/// when not root), as `labkit::private_network!` does for every raw-socket test.
fn private_network_works() -> bool {
    let mut cmd = std::process::Command::new("unshare");
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.args(["--net", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether this process has CAP_NET_RAW (bit 13 of CapEff).
pub fn has_net_raw() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 13) != 0)
}

/// Soft and hard limits on open files, from /proc/self/limits.
fn open_files_limit() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line["Max open files".len()..].split_whitespace();
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}

fn rustc_version() -> Option<String> {
    let out = Command::new("rustc").arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `1.88` of `rustc 1.95.0 (...)` compared with the workspace's rust-version.
fn version_at_least(rustc: &str, minimum: &str) -> bool {
    let parse = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    let have = rustc
        .split_whitespace()
        .nth(1)
        .map(parse)
        .unwrap_or_default();
    have >= parse(minimum)
}

pub fn checks(rust_version: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let rustc = rustc_version().unwrap_or_default();
    checks.push(check(
        "Rust toolchain",
        version_at_least(&rustc, rust_version),
        if rustc.is_empty() {
            "rustc not found".into()
        } else {
            format!("{rustc} (course needs {rust_version}+)")
        },
        "rustup update stable",
        true,
    ));
    for (tool, package, why, required) in [
        (
            "strace",
            "strace",
            "syscall tracing (labs 1.3, what-to-observe commands)",
            true,
        ),
        ("ss", "iproute2", "socket statistics", true),
        (
            "ip",
            "iproute2",
            "network namespaces for raw-socket labs",
            true,
        ),
        ("tcpdump", "tcpdump", "watching packets on lo", false),
        ("ltrace", "ltrace", "library call tracing", false),
        ("htop", "htop", "watching threads and memory", false),
        (
            "psql",
            "postgresql-client",
            "talking to PostgreSQL by hand",
            false,
        ),
        (
            "redis-cli",
            "redis-tools",
            "talking to Redis by hand",
            false,
        ),
        ("wrk", "wrk", "HTTP load for the benchmarks", false),
    ] {
        let ok = has_tool(tool);
        checks.push(check(
            tool,
            ok,
            if ok {
                why.to_string()
            } else {
                format!("not found: {why}")
            },
            &format!("sudo apt-get install {package}   (or: sudo scripts/install-tools.sh)"),
            required,
        ));
    }
    let db = database_url();
    checks.push(check(
        "PostgreSQL",
        reachable(&db, 5432),
        format!("DATABASE_URL={db}"),
        "scripts/services.sh up",
        true,
    ));
    let redis = redis_url();
    checks.push(check(
        "Redis",
        reachable(&redis, 6379),
        format!("REDIS_URL={redis}"),
        "scripts/services.sh up",
        true,
    ));
    // The raw-socket graders (7.2, 7.3) run each test in a network namespace of its own,
    // inside a user namespace when not root: that is what they need, not CAP_NET_RAW itself.
    let private_net = private_network_works();
    checks.push(check(
        "private networks",
        private_net,
        if private_net {
            "the raw-socket graders can make their own network namespace".into()
        } else {
            "unshare(1) cannot create a user and network namespace: labs 7.2 and 7.3 cannot grade".into()
        },
        "run the tests as root, or allow user namespaces (sysctl kernel.unprivileged_userns_clone=1)",
        false,
    ));
    let raw = has_net_raw();
    checks.push(check(
        "raw sockets",
        raw,
        if raw {
            "CAP_NET_RAW present".into()
        } else {
            "no CAP_NET_RAW: running 7.2 or 7.3 by hand needs it (their graders do not)".into()
        },
        "run as root, inside `unshare -rn`, or `sudo setcap cap_net_raw+ep <binary>`",
        false,
    ));
    let (soft, hard) = open_files_limit().unwrap_or((0, 0));
    checks.push(check(
        "open files",
        soft >= 12_000,
        format!("RLIMIT_NOFILE soft {soft}, hard {hard} (the C10K lab needs 12000)"),
        "ulimit -n 20000   (raise the hard limit in /etc/security/limits.conf if refused)",
        false,
    ));
    checks
}

/// Prints the checks; returns whether every required one is ok.
pub fn report(checks: &[Check]) -> bool {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in checks {
        let mark = if c.ok {
            ui::ok_mark()
        } else if c.required {
            ui::fail_mark()
        } else {
            ui::warn_mark()
        };
        println!("  {mark} {:width$}  {}", c.name, ui::dim(&c.detail));
        if let Some(fix) = &c.fix {
            println!("    {:width$}  fix: {}", "", ui::bold(fix));
        }
    }
    checks.iter().all(|c| c.ok || !c.required)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_versions() {
        assert!(version_at_least(
            "rustc 1.95.0 (59807616e 2026-04-14)",
            "1.88"
        ));
        assert!(version_at_least("rustc 1.88.0", "1.88"));
        assert!(!version_at_least("rustc 1.87.2", "1.88"));
        assert!(!version_at_least("", "1.88"));
    }

    #[test]
    fn unreachable_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(!reachable(&format!("redis://127.0.0.1:{port}"), 6379));
        assert!(!reachable("garbage", 1));
    }

    #[test]
    fn every_failed_check_has_a_fix() {
        for c in checks("1.0") {
            assert_eq!(c.ok, c.fix.is_none(), "{}", c.name);
        }
    }
}
