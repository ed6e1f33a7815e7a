//! The browser client page, embedded in the binary and served at `GET /`.
//!
//! The page (`server/web/`) is hand-written HTML, CSS and ES modules with no
//! build step: what is in the repository is what the browser runs. It uses
//! the JavaScript client library (`clients/js`, served under `/client/`
//! as published) over `/ws` on the same host and port, `tickforge.v1.bin`
//! by default (`?json` for the readable form), joins an arena room, draws
//! it and shows the live figures (see `server/web/app.js`).
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
    Asset { path: "/predict.js", content_type: JS, bytes: include_bytes!("../../web/predict.js") },
    Asset { path: "/style.css", content_type: CSS, bytes: include_bytes!("../../web/style.css") },
    // The operator's monitor (`GET /monitor`), fed by `/monitor.json`.
    Asset { path: "/monitor.html", content_type: HTML, bytes: include_bytes!("../../web/monitor.html") },
    Asset { path: "/monitor.js", content_type: JS, bytes: include_bytes!("../../web/monitor.js") },
    Asset { path: "/monitor.css", content_type: CSS, bytes: include_bytes!("../../web/monitor.css") },
    // The client library (clients/js), as published: the page imports it.
    Asset { path: "/client/index.js", content_type: JS, bytes: include_bytes!("../../../clients/js/index.js") },
    Asset {
        path: "/client/src/bincode.js",
        content_type: JS,
        bytes: include_bytes!("../../../clients/js/src/bincode.js"),
    },
    Asset {
        path: "/client/src/client.js",
        content_type: JS,
        bytes: include_bytes!("../../../clients/js/src/client.js"),
    },
    Asset { path: "/client/src/delta.js", content_type: JS, bytes: include_bytes!("../../../clients/js/src/delta.js") },
    Asset {
        path: "/client/src/emitter.js",
        content_type: JS,
        bytes: include_bytes!("../../../clients/js/src/emitter.js"),
    },
    Asset {
        path: "/client/src/errors.js",
        content_type: JS,
        bytes: include_bytes!("../../../clients/js/src/errors.js"),
    },
    Asset { path: "/client/src/json.js", content_type: JS, bytes: include_bytes!("../../../clients/js/src/json.js") },
    Asset {
        path: "/client/src/messages.js",
        content_type: JS,
        bytes: include_bytes!("../../../clients/js/src/messages.js"),
    },
    Asset {
        path: "/client/src/schema.js",
        content_type: JS,
        bytes: include_bytes!("../../../clients/js/src/schema.js"),
    },
    Asset { path: "/client/src/store.js", content_type: JS, bytes: include_bytes!("../../../clients/js/src/store.js") },
    Asset { path: "/client/src/value.js", content_type: JS, bytes: include_bytes!("../../../clients/js/src/value.js") },
];

/// The content type and bytes of the page asset at `path` (the request
/// target's path, without query): `/`, `/index.html`, the page's modules
/// and style, the library's modules under `/client/`; `None` for any other
/// path.
pub(crate) fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = match path {
        "/" => "/index.html",
        "/monitor" => "/monitor.html",
        other => other,
    };
    ASSETS.iter().find(|a| a.path == path).map(|a| (a.content_type, a.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATHS: &[&str] = &[
        "/",
        "/index.html",
        "/app.js",
        "/state.js",
        "/render.js",
        "/predict.js",
        "/style.css",
        "/monitor",
        "/monitor.html",
        "/monitor.js",
        "/monitor.css",
        "/client/index.js",
        "/client/src/bincode.js",
        "/client/src/client.js",
        "/client/src/delta.js",
        "/client/src/emitter.js",
        "/client/src/errors.js",
        "/client/src/json.js",
        "/client/src/messages.js",
        "/client/src/schema.js",
        "/client/src/store.js",
        "/client/src/value.js",
    ];

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
        assert_eq!(PATHS.len(), ASSETS.len() + 2, "PATHS lists every asset, / and /monitor");
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
        for page in ["/", "/monitor"] {
            for attr in ["src=\"", "href=\""] {
                for part in text(page).split(attr).skip(1) {
                    let target = &part[..part.find('"').expect("attribute is closed")];
                    if target.starts_with('/') {
                        refs.push(target.to_owned());
                    }
                }
            }
        }
        for path in PATHS.iter().filter(|p| p.ends_with(".js")) {
            let dir = &path[..=path.rfind('/').expect("an absolute path")];
            for part in text(path).split("from \"./").skip(1) {
                refs.push(format!("{dir}{}", &part[..part.find('"').expect("import is closed")]));
            }
        }
        for want in ["/app.js", "/state.js", "/client/index.js", "/client/src/client.js", "/monitor.js", "/monitor.css"]
        {
            assert!(refs.iter().any(|r| r == want), "{want} is not referenced: {refs:?}");
        }
        for r in &refs {
            assert!(asset(r).is_some(), "{r} is referenced but not served");
        }
    }

    #[test]
    fn the_page_uses_the_library_binary_by_default() {
        assert!(text("/app.js").contains("from \"./client/index.js\""));
        assert!(text("/state.js").contains("return \"bin\";"));
        assert!(text("/client/src/messages.js").contains("\"tickforge.v1.bin\""));
    }

    #[test]
    fn every_library_module_is_served() {
        // A module added to clients/js/src must be listed in ASSETS too.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/js/src");
        for entry in std::fs::read_dir(dir).expect("clients/js/src is readable") {
            let name = entry.expect("a directory entry").file_name().into_string().expect("a UTF-8 name");
            if name.ends_with(".js") {
                assert!(asset(&format!("/client/src/{name}")).is_some(), "clients/js/src/{name} is not served");
            }
        }
    }
}
