//! Mini PS: `mini_ps [--pid N] [--tree]`, a small `ps` that reads `/proc`.
//!
//! Everything `ps` shows comes from three small text files per process, which the kernel writes
//! at the moment you read them:
//!
//! - `/proc/<pid>/stat`: one line, `pid (comm) state ppid ... num_threads ...`. The command name
//!   `comm` is whatever the program file was called, spaces and parentheses included, so the
//!   line is split at the *last* `)`, never at the first space.
//! - `/proc/<pid>/status`: `Name: value` lines; `VmRSS` is the resident memory in KiB (absent for
//!   kernel threads and zombies, which have no user memory).
//! - `/proc/<pid>/cmdline`: the arguments, each ended by a NUL byte; empty for kernel threads
//!   and zombies, which `ps` then shows as `[comm]`.
//!
//! `/proc` is a snapshot taken file by file: a process listed by `read_dir` may be gone when we
//! open its files. That is normal, not an error: such a process is skipped.

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Write as _};
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

pub const USAGE: &str = "usage: mini_ps [--pid N] [--tree]";

/// `ESRCH` ("no such process") on Linux: what reading a `/proc` file of a process that exited
/// after we opened it can return, next to the more usual `ENOENT`.
const ESRCH: i32 = 3;

/// Why the program stopped.
#[derive(Debug)]
pub enum PsError {
    /// The command line is wrong: exit code 2, with the usage, on one line of stderr.
    Usage(String),
    /// `--help` or `-h`: not a failure; the usage goes to stdout and the exit code is 0.
    Help,
    /// `--pid N` names no process: exit code 1.
    NoSuchProcess(u32),
    /// A `/proc` file could not be read or parsed: exit code 1.
    Proc { path: PathBuf, why: String },
}

impl fmt::Display for PsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PsError::Usage(why) => write!(f, "{why}; {USAGE}"),
            PsError::Help => write!(f, "{USAGE}"),
            PsError::NoSuchProcess(pid) => write!(f, "no process with pid {pid}"),
            PsError::Proc { path, why } => write!(f, "{}: {why}", path.display()),
        }
    }
}

/// The fields of `/proc/<pid>/stat` that `mini_ps` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// The command name between the parentheses (at most 15 bytes, any characters).
    pub comm: String,
    /// `R` running, `S` sleeping, `D` disk wait, `Z` zombie, `T` stopped, `I` idle...
    pub state: char,
    pub ppid: u32,
    pub threads: u32,
}

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub state: char,
    pub threads: u32,
    pub rss_kib: u64,
    /// The command line, or `[comm]` when it is empty (kernel threads, zombies).
    pub command: String,
}

/// Parses one `/proc/<pid>/stat` line; `None` when it does not look like one.
pub fn parse_stat(line: &str) -> Option<Stat> {
    // `comm` runs from the first '(' to the LAST ')': the name itself may hold both, as in
    // `42 (a) b (c) S 1 ...`. Everything after the last ')' is space-separated numbers.
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = line[..open].trim().parse().ok()?;
    let comm = line[open + 1..close].to_string();
    let mut fields = line[close + 1..].split_whitespace();
    let mut state_chars = fields.next()?.chars();
    let state = state_chars.next()?;
    if state_chars.next().is_some() {
        return None;
    }
    let ppid = fields.next()?.parse().ok()?;
    // Field 20 of proc(5) is num_threads; state and ppid were fields 3 and 4, so skip
    // fields 5 to 19 (pgrp .. nice): 15 of them.
    let threads = fields.nth(15)?.parse().ok()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
        threads,
    })
}

/// `VmRSS` of a `/proc/<pid>/status` text in KiB; `None` when there is no such line.
pub fn parse_status_rss_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix("VmRSS:")?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// The arguments of a `/proc/<pid>/cmdline` (each ended by NUL) joined with spaces; `None`
/// when it is empty. Bytes that are not UTF-8 are shown lossily, control characters as `?`.
pub fn parse_cmdline(raw: &[u8]) -> Option<String> {
    // A program that rewrites its title (`setproctitle`) may leave trailing NULs, or none.
    let end = raw.iter().rposition(|&b| b != 0)? + 1;
    let args: Vec<_> = raw[..end]
        .split(|&b| b == 0)
        .map(String::from_utf8_lossy)
        .collect();
    Some(printable(&args.join(" ")))
}

/// Replaces control characters with `?`, as `ps` does: an argument may hold a newline
/// (`sh -c 'a<newline>b'`), and one process must stay one line of output.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Whether an error means "the process is gone", which is not an error for `ps`.
fn vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH)
}

/// Reads `/proc/<pid>/<file>`; `Ok(None)` when the process is gone.
fn read_proc_file(pid: u32, file: &str) -> Result<Option<Vec<u8>>, PsError> {
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if vanished(&e) => Ok(None),
        Err(e) => Err(PsError::Proc {
            path,
            why: e.to_string(),
        }),
    }
}

/// Reads one process from its three `/proc` files; `Ok(None)` when it does not exist (or no
/// longer does: it may exit between two of the reads).
pub fn read_process(pid: u32) -> Result<Option<Process>, PsError> {
    let Some(stat) = read_proc_file(pid, "stat")? else {
        return Ok(None);
    };
    let Some(status) = read_proc_file(pid, "status")? else {
        return Ok(None);
    };
    let Some(cmdline) = read_proc_file(pid, "cmdline")? else {
        return Ok(None);
    };
    let stat_text = String::from_utf8_lossy(&stat);
    let Some(stat) = parse_stat(&stat_text) else {
        // An empty read also happens when the process died after `open`: gone, not broken.
        if stat.is_empty() {
            return Ok(None);
        }
        return Err(PsError::Proc {
            path: format!("/proc/{pid}/stat").into(),
            why: format!("cannot parse {stat_text:?}"),
        });
    };
    Ok(Some(Process {
        pid,
        ppid: stat.ppid,
        state: stat.state,
        threads: stat.threads,
        rss_kib: parse_status_rss_kib(&String::from_utf8_lossy(&status)).unwrap_or(0),
        command: parse_cmdline(&cmdline).unwrap_or_else(|| format!("[{}]", printable(&stat.comm))),
    }))
}

/// Every process in `/proc`, sorted by PID. Processes that vanish meanwhile are skipped.
pub fn list_processes() -> Result<Vec<Process>, PsError> {
    let proc_error = |e: io::Error| PsError::Proc {
        path: "/proc".into(),
        why: e.to_string(),
    };
    let mut processes = Vec::new();
    for entry in fs::read_dir("/proc").map_err(proc_error)? {
        // Only the numeric entries are processes (threads live under /proc/<pid>/task).
        let Some(pid) = entry
            .map_err(proc_error)?
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(process) = read_process(pid)? {
            processes.push(process);
        }
    }
    processes.sort_by_key(|p| p.pid);
    Ok(processes)
}

/// The listing: a header and one row per process. Numbers are right-aligned in columns as
/// wide as their widest value, so COMMAND starts at the same column on every line.
pub fn format_table(processes: &[Process]) -> String {
    let header = ["PID", "PPID", "S", "THR", "RSS_KIB"];
    let cells: Vec<[String; 5]> = processes
        .iter()
        .map(|p| {
            [
                p.pid.to_string(),
                p.ppid.to_string(),
                p.state.to_string(),
                p.threads.to_string(),
                p.rss_kib.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5], command: &str| {
        for (cell, width) in cells.iter().zip(widths) {
            let _ = write!(out, "{cell:>width$} ");
        }
        let _ = writeln!(out, "{command}");
    };
    line(header, "COMMAND");
    for (row, p) in cells.iter().zip(processes) {
        line(row.each_ref().map(String::as_str), &p.command);
    }
    out
}

/// The tree: `PID COMMAND` per line, indented two spaces per level below its parent. Roots are
/// processes whose parent is not listed (PID 1 and kthreadd have PPID 0); siblings in PID order.
pub fn format_tree(processes: &[Process]) -> String {
    let listed: HashSet<u32> = processes.iter().map(|p| p.pid).collect();
    let mut children: BTreeMap<u32, Vec<&Process>> = BTreeMap::new();
    let mut roots = Vec::new();
    for p in processes {
        if p.ppid != p.pid && listed.contains(&p.ppid) {
            children.entry(p.ppid).or_default().push(p);
        } else {
            roots.push(p);
        }
    }
    // Depth-first with an explicit stack (pushed in reverse so the smallest PID comes out
    // first): no recursion, whatever the depth of the tree.
    let mut out = String::new();
    let mut stack: Vec<(&Process, usize)> = roots.iter().rev().map(|&p| (p, 0)).collect();
    while let Some((p, depth)) = stack.pop() {
        let _ = writeln!(
            out,
            "{:indent$}{} {}",
            "",
            p.pid,
            p.command,
            indent = depth * 2
        );
        if let Some(kids) = children.get(&p.pid) {
            stack.extend(kids.iter().rev().map(|&kid| (kid, depth + 1)));
        }
    }
    out
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub pid: Option<u32>,
    pub tree: bool,
}

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, PsError> {
    let mut config = Config {
        pid: None,
        tree: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Err(PsError::Help),
            "--tree" => config.tree = true,
            "--pid" => {
                let value = args
                    .next()
                    .ok_or_else(|| PsError::Usage("--pid needs a number".into()))?;
                let pid = value
                    .parse()
                    .map_err(|_| PsError::Usage(format!("not a pid: {value}")))?;
                config.pid = Some(pid);
            }
            other => return Err(PsError::Usage(format!("unknown argument: {other}"))),
        }
    }
    Ok(config)
}

fn run(config: &Config) -> Result<String, PsError> {
    let processes = match config.pid {
        Some(pid) => vec![read_process(pid)?.ok_or(PsError::NoSuchProcess(pid))?],
        None => list_processes()?,
    };
    Ok(if config.tree {
        format_tree(&processes)
    } else {
        format_table(&processes)
    })
}

fn main() -> ExitCode {
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    match parse_args(args).and_then(|config| run(&config)) {
        Ok(text) => {
            // A closed pipe (`mini_ps | head`) is not worth a message.
            let _ = io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(PsError::Help) => {
            println!(
                "{USAGE}\n\nLists the processes of /proc: PID, parent, state, threads, RSS, command."
            );
            println!("  --pid N     only process N");
            println!("  --tree      each process under its parent");
            println!("  -h, --help  print this help");
            ExitCode::SUCCESS
        }
        Err(e @ PsError::Usage(_)) => {
            eprintln!("mini_ps: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("mini_ps: {e}");
            ExitCode::from(1)
        }
    }
}
