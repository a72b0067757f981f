//! PostgreSQL and Redis for chapters 4 to 6: where they are, and a fast, clear failure when
//! they are not there.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Default database of the course; `scripts/services.sh up` creates it.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/course";
/// Default Redis of the course.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// `DATABASE_URL`, or the course default.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string())
}

/// `REDIS_URL`, or the course default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_string())
}

/// Returns `DATABASE_URL` once PostgreSQL accepts TCP connections; otherwise panics at once with
/// one line naming the fix.
pub fn require_postgres() -> String {
    let url = database_url();
    require("PostgreSQL", "DATABASE_URL", &url, 5432);
    url
}

/// Returns `REDIS_URL` once Redis accepts TCP connections; otherwise panics with the fix.
pub fn require_redis() -> String {
    let url = redis_url();
    require("Redis", "REDIS_URL", &url, 6379);
    url
}

fn require(service: &str, var: &str, url: &str, default_port: u16) {
    let Some(hostport) = host_port(url, default_port) else {
        panic!("{var}={url} is not a URL like scheme://user:pass@host:port/db");
    };
    let reachable = hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr: SocketAddr| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
        });
    if !reachable {
        panic!(
            "{service} is not reachable at {hostport} ({var}): start it with `scripts/services.sh up`"
        );
    }
}

/// `host:port` of a service URL such as `postgres://user:pw@host:5432/db`.
pub fn host_port(url: &str, default_port: u16) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() {
        return None;
    }
    let has_port = hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok() && !hostport.ends_with(']'));
    Some(if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{default_port}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_of_urls() {
        assert_eq!(
            host_port(DEFAULT_DATABASE_URL, 5432).as_deref(),
            Some("127.0.0.1:5432")
        );
        assert_eq!(
            host_port("redis://localhost", 6379).as_deref(),
            Some("localhost:6379")
        );
        assert_eq!(
            host_port("redis://:secret@db.example:7000/2", 6379).as_deref(),
            Some("db.example:7000")
        );
        assert_eq!(host_port("not a url", 1), None);
    }

    #[test]
    fn unreachable_service_names_the_fix() {
        let port = crate::net::closed_port().port();
        let url = format!("redis://127.0.0.1:{port}");
        let err = std::panic::catch_unwind(|| require("Redis", "REDIS_URL", &url, 6379))
            .expect_err("must fail");
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("scripts/services.sh up"), "{msg}");
        assert!(!msg.contains('\n'));
    }
}
