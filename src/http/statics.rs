//! Static files (`[http] static_dir`): a browser app served from the node's own origin, so
//! its pages call the REST API and open EventSources without CORS. The directory is read
//! once at start into memory (at most `http.static_max_bytes`, `MAX_FILES` files), so
//! serving a file costs a hash lookup and no system call, and a miss on a table path costs
//! one lookup. Files are public (GET and HEAD need no credentials): they are the app, not
//! its data. Dot-files and symbolic links are skipped. `/` and `/dir/` serve `index.html`.
//! Paths are matched percent-decoded (`/a%20b.js` is the file `a b.js`).

use super::request::{Method, Request};
use super::response::Response;
use crate::config::HttpConfig;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The most files a static directory may hold.
pub const MAX_FILES: usize = 10_000;
/// Directories nested deeper than this are refused (keeps the walk bounded).
const MAX_DEPTH: usize = 16;

/// One file, ready to send.
#[derive(Debug)]
struct File {
    body: Arc<[u8]>,
    content_type: &'static str,
    /// A strong validator: `"` + the SHA-256 of the content, shortened + `"`.
    etag: String,
}

/// Every static file by URL path (`/app/main.js`).
#[derive(Debug, Default)]
pub struct StaticFiles {
    files: HashMap<String, File>,
}

impl StaticFiles {
    /// Reads `http.static_dir`, if set. Errors name the file or limit at fault.
    pub fn load(cfg: &HttpConfig) -> Result<StaticFiles, String> {
        let Some(dir) = &cfg.static_dir else {
            return Ok(StaticFiles::default());
        };
        let mut walk = Walk {
            files: HashMap::new(),
            bytes: 0,
            max_bytes: cfg.static_max_bytes,
        };
        walk.dir(Path::new(dir), "", 0)
            .map_err(|e| format!("http.static_dir {dir:?}: {e}"))?;
        walk.index_directories();
        tracing::info!(
            dir = %dir,
            files = walk.files.len(),
            bytes = walk.bytes,
            "static files loaded"
        );
        Ok(StaticFiles { files: walk.files })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether `req` asks for a static file (a GET or HEAD of a path the directory holds).
    pub fn serves(&self, req: &Request<'_>) -> bool {
        matches!(req.method, Method::Get | Method::Head) && self.file(req.path).is_some()
    }

    /// The answer to `req` if it asks for a static file.
    pub fn answer(&self, req: &Request<'_>) -> Option<Response> {
        if !matches!(req.method, Method::Get | Method::Head) {
            return None;
        }
        let file = self.file(req.path)?;
        if req.if_none_match.is_some_and(|l| {
            l.split(',')
                .any(|t| t.trim() == file.etag || t.trim() == "*")
        }) {
            let mut r = Response::new(304);
            r.extra.push(format!("ETag: {}", file.etag));
            return Some(r);
        }
        let mut r = Response::json(200, file.body.to_vec());
        r.content_type = std::borrow::Cow::Borrowed(file.content_type);
        r.extra.push(format!("ETag: {}", file.etag));
        r.extra.push("Cache-Control: no-cache".into());
        Some(r)
    }

    /// The file a (percent-encoded) URL path names.
    fn file(&self, path: &str) -> Option<&File> {
        if self.files.is_empty() {
            return None;
        }
        let path = crate::query::percent::percent_decode(path).ok()?;
        self.files.get(path.as_ref())
    }
}

/// The walk over the directory, with what it has read so far.
struct Walk {
    files: HashMap<String, File>,
    bytes: usize,
    max_bytes: usize,
}

impl Walk {
    fn dir(&mut self, dir: &Path, prefix: &str, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} directories"));
        }
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| !n.starts_with('.')) else {
                continue;
            };
            let url = format!("{prefix}/{name}");
            let kind = entry.file_type().map_err(|e| format!("{name}: {e}"))?;
            if kind.is_dir() {
                self.dir(&entry.path(), &url, depth + 1)?;
            } else if kind.is_file() {
                self.file(&entry.path(), url)?;
            }
        }
        Ok(())
    }

    /// `/dir/` serves `/dir/index.html`: stored under both paths (the body is shared), so a
    /// lookup never builds a path.
    fn index_directories(&mut self) {
        let dirs: Vec<(String, File)> = self
            .files
            .iter()
            .filter_map(|(url, f)| {
                let dir = url
                    .strip_suffix("index.html")
                    .filter(|d| d.ends_with('/'))?;
                let copy = File {
                    body: f.body.clone(),
                    content_type: f.content_type,
                    etag: f.etag.clone(),
                };
                Some((dir.to_string(), copy))
            })
            .collect();
        self.files.extend(dirs);
    }

    fn file(&mut self, path: &Path, url: String) -> Result<(), String> {
        if self.files.len() >= MAX_FILES {
            return Err(format!("holds more than {MAX_FILES} files"));
        }
        let body = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.bytes += body.len();
        if self.bytes > self.max_bytes {
            return Err(format!(
                "holds more than http.static_max_bytes ({} bytes)",
                self.max_bytes
            ));
        }
        let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&body));
        let etag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let file = File {
            content_type: content_type(path),
            etag: format!("\"{etag}\""),
            body: body.into(),
        };
        self.files.insert(url, file);
        Ok(())
    }
}

/// The media type of a file, by its extension.
fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &Path, max_bytes: usize) -> Result<StaticFiles, String> {
        StaticFiles::load(&HttpConfig {
            static_dir: Some(dir.to_string_lossy().into_owned()),
            static_max_bytes: max_bytes,
            ..HttpConfig::default()
        })
    }

    #[test]
    fn files_are_found_by_url_path_and_dot_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>hi</p>").unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/main file.js"), "1").unwrap();
        std::fs::write(dir.path().join(".env"), "SECRET=1").unwrap();
        std::fs::write(dir.path().join("app/notindex.html"), "x").unwrap();
        let s = load(dir.path(), 1024).unwrap();
        assert!(s.file("/").is_some());
        assert_eq!(
            s.file("/index.html").unwrap().content_type,
            "text/html; charset=utf-8"
        );
        assert!(s.file("/app/main%20file.js").is_some());
        assert!(s.file("/.env").is_none());
        assert!(s.file("/Product").is_none());
        assert!(
            s.file("/app/not").is_none(),
            "only index.html stands for its directory"
        );
        assert!(s.file("/app/").is_none(), "app/ has no index.html");
    }

    #[test]
    fn a_directory_over_the_byte_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.bin"), vec![0u8; 2048]).unwrap();
        let e = load(dir.path(), 1024).unwrap_err();
        assert!(e.contains("static_max_bytes"), "{e}");
    }

    #[test]
    fn a_missing_directory_is_an_error_that_names_it() {
        let e = load(Path::new("/nonexistent/static"), 1024).unwrap_err();
        assert!(e.contains("/nonexistent/static"), "{e}");
    }
}
