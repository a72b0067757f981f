//! The site under test: a fresh directory of random files, and a secret next to it.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::echo::random_bytes;
use crate::process::Server;

/// A file under the root: its URL path after `/static/`, its bytes, its content type (the
/// media type alone, without parameters such as `charset`).
#[derive(Debug, Clone)]
pub struct SiteFile {
    pub url: String,
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
}

/// A server started over a fresh directory of random files.
///
/// ```text
/// DIR/secret.txt          outside the root: never served
/// DIR/root/               --root
///          index.html style.css app.js data.json notes.txt image.png blob.bin
///          "with space.txt"   sub/deep/file.txt
/// ```
pub struct Site {
    pub server: Server,
    pub root: PathBuf,
    pub files: Vec<SiteFile>,
    /// The content of `DIR/secret.txt`: a random token no response may ever contain.
    pub secret: String,
    pub secret_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Site {
    pub fn start(bin: &str) -> Site {
        Site::start_with(bin, &[])
    }

    /// Starts the server with extra arguments, for example `["--request-timeout", "1"]`.
    pub fn start_with(bin: &str, extra: &[&str]) -> Site {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub/deep")).expect("create the root");
        let secret = format!("SECRET-{}", hex(&random_bytes(12)));
        let secret_path = dir.path().join("secret.txt");
        std::fs::write(&secret_path, &secret).expect("write the secret");

        let text = |len: usize| -> Vec<u8> {
            random_bytes(len)
                .iter()
                .map(|b| b"abcdefghijklmnopqrstuvwxyz0123456789 \n"[(*b % 38) as usize])
                .collect()
        };
        let mut files = vec![
            ("index.html", "index.html", text(700), "text/html"),
            ("style.css", "style.css", text(300), "text/css"),
            ("app.js", "app.js", text(900), "text/javascript"),
            (
                "data.json",
                "data.json",
                b"{\"ok\": true}".to_vec(),
                "application/json",
            ),
            ("notes.txt", "notes.txt", text(2000), "text/plain"),
            ("image.png", "image.png", random_bytes(3000), "image/png"),
            (
                "blob.bin",
                "blob.bin",
                random_bytes(100_000),
                "application/octet-stream",
            ),
            ("with space.txt", "with%20space.txt", text(50), "text/plain"),
            (
                "sub/deep/file.txt",
                "sub/deep/file.txt",
                text(400),
                "text/plain",
            ),
        ];
        let files = files
            .drain(..)
            .map(|(name, url, bytes, media_type)| {
                std::fs::write(root.join(name), &bytes).expect("write a file");
                SiteFile {
                    url: url.to_string(),
                    bytes,
                    media_type,
                }
            })
            .collect();

        let root_arg = root.display().to_string();
        let mut args = vec!["--root", root_arg.as_str()];
        args.extend_from_slice(extra);
        let server = Server::start(bin, &args);
        Site {
            server,
            root,
            files,
            secret,
            secret_path,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    pub fn file(&self, url: &str) -> &SiteFile {
        self.files
            .iter()
            .find(|f| f.url == url)
            .expect("a file of the site")
    }

    /// Panics with the server's output if it died.
    pub fn assert_running(&mut self, after: &str) {
        if !self.server.is_running() {
            self.server.fail(&format!("died after {after}"));
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `text/html; charset=utf-8` gives `text/html`.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}
