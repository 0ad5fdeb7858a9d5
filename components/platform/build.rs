//! Embeds the list of migrations that exist at build time, so `/v1/health`
//! can tell whether the database has every one of them applied.

use std::path::Path;

fn main() {
    // Read at run time, not baked in when the script is compiled: a build
    // script binary reused from another checkout (a shared target dir)
    // must still read and watch this checkout's migrations.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("../../infra/migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut migrations: Vec<(u32, String)> = std::fs::read_dir(&dir)
        .expect("infra/migrations exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let version = name
                .split_once('_')
                .and_then(|(v, _)| v.parse().ok())
                .unwrap_or_else(|| panic!("migration {name} must be named NNNN_name.sql"));
            (version, name)
        })
        .collect();
    migrations.sort();
    // Two files with one version would make "applied" ambiguous.
    if let Some(pair) = migrations.windows(2).find(|w| w[0].0 == w[1].0) {
        panic!("migrations {} and {} share a version", pair[0].1, pair[1].1);
    }
    let entries: Vec<String> = migrations
        .iter()
        .map(|(v, n)| format!("({v}, {n:?})"))
        .collect();
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs");
    std::fs::write(
        out,
        format!("/// Migrations known at build time: (version, name).\npub const EXPECTED: &[(i64, &str)] = &[{}];\n", entries.join(", ")),
    )
    .expect("write migrations.rs");
}
