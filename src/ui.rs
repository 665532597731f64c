//! The web explorer's built bundle (`ui/dist`, committed), embedded so that
//! `cargo run --release` serves it on a machine without Node.js. The
//! query crate serves these files; this only hands them over.

use std::sync::Arc;

use include_dir::{Dir, include_dir};
use seam_query::UiFiles;

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/ui/dist");

/// The files by path relative to `ui/dist`.
pub fn files() -> UiFiles {
    Arc::new(|path: &str| DIST.get_file(path).map(|f| f.contents()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_and_its_bundle_are_embedded() {
        let files = super::files();
        let page = std::str::from_utf8(files("index.html").expect("ui/dist/index.html")).unwrap();
        let scripts: Vec<&str> = page
            .split("src=\"/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert!(!scripts.is_empty(), "index.html loads no script");
        for script in scripts {
            assert!(
                files(script).is_some(),
                "{script} is referenced but not embedded"
            );
        }
    }
}
