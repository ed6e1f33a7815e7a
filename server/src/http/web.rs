//! The browser client page, embedded in the binary and served at `GET /`.
//!
//! The page (`server/web/`) is hand-written HTML, CSS and ES modules with no
//! build step: what is in the repository is what the browser runs. It speaks
//! `tickforge.v1.json` over `/ws` on the same host and port, joins an arena
//! room, draws it and shows the live figures (see `server/web/app.js`).
//! [`asset`] maps a request path to its bytes; the HTTP router answers 404
//! for any path it does not know.

/// One embedded file: its request path, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file the page is made of. `/` serves `index.html`.
const ASSETS: &[Asset] = &[
    Asset { path: "/index.html", content_type: HTML, bytes: include_bytes!("../../web/index.html") },
    Asset { path: "/app.js", content_type: JS, bytes: include_bytes!("../../web/app.js") },
    Asset { path: "/state.js", content_type: JS, bytes: include_bytes!("../../web/state.js") },
    Asset { path: "/render.js", content_type: JS, bytes: include_bytes!("../../web/render.js") },
    Asset { path: "/style.css", content_type: CSS, bytes: include_bytes!("../../web/style.css") },
];

/// The content type and bytes of the page asset at `path` (the request
/// target's path, without query): `/`, `/index.html`, `/app.js`,
/// `/state.js`, `/render.js`, `/style.css`; `None` for any other path.
pub(crate) fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path).map(|a| (a.content_type, a.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATHS: &[&str] = &["/", "/index.html", "/app.js", "/state.js", "/render.js", "/style.css"];

    fn text(path: &str) -> &'static str {
        let (_, bytes) = asset(path).unwrap_or_else(|| panic!("{path} is not served"));
        std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{path} is not UTF-8: {e}"))
    }

    #[test]
    fn root_serves_the_page() {
        let (ty, bytes) = asset("/").expect("/ is served");
        assert_eq!(ty, HTML);
        assert_eq!(asset("/index.html"), Some((ty, bytes)));
        let page = text("/");
        assert!(page.starts_with("<!doctype html>"));
        for id in ["status", "room", "players", "tick", "rtt", "bytes", "error", "reconnect", "view"] {
            assert!(page.contains(&format!("id=\"{id}\"")), "the page lacks #{id}");
        }
    }

    #[test]
    fn every_listed_path_is_served_with_its_type() {
        for path in PATHS {
            let (ty, bytes) = asset(path).unwrap_or_else(|| panic!("{path} is listed but not served"));
            assert!(!bytes.is_empty(), "{path} is empty");
            let want = match path.rsplit('.').next() {
                Some("js") => JS,
                Some("css") => CSS,
                _ => HTML,
            };
            assert_eq!(ty, want, "{path}");
        }
        assert_eq!(PATHS.len(), ASSETS.len() + 1, "PATHS lists every asset and /");
    }

    #[test]
    fn unknown_paths_are_not_served() {
        for path in ["", "/ws", "/rooms", "/app.js?x=1", "/../Cargo.toml", "/web/app.js", "/APP.JS", "/index.htm"] {
            assert_eq!(asset(path), None, "{path:?}");
        }
    }

    #[test]
    fn the_page_references_only_served_files() {
        // Every `src="/..."` / `href="/..."` of the page and every relative
        // module import must resolve to an asset, or the page breaks.
        let mut refs = Vec::new();
        for attr in ["src=\"", "href=\""] {
            for part in text("/").split(attr).skip(1) {
                let target = &part[..part.find('"').expect("attribute is closed")];
                if target.starts_with('/') {
                    refs.push(target.to_owned());
                }
            }
        }
        for path in PATHS.iter().filter(|p| p.ends_with(".js")) {
            for part in text(path).split("from \"./").skip(1) {
                refs.push(format!("/{}", &part[..part.find('"').expect("import is closed")]));
            }
        }
        assert!(refs.iter().any(|r| r == "/app.js") && refs.iter().any(|r| r == "/state.js"), "{refs:?}");
        for r in &refs {
            assert!(asset(r).is_some(), "{r} is referenced but not served");
        }
    }

    #[test]
    fn the_page_speaks_the_json_subprotocol() {
        assert!(text("/app.js").contains("\"tickforge.v1.json\""));
    }
}
