//! Embeds every migration in `infra/migrations/` (version, name, SQL text,
//! SHA-256 of the text), so the app can apply them itself through
//! `spin:sqlite` on any Spin host, and report which are pending.

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time, not baked in when the script is compiled: a build
    // script binary reused from another checkout (a shared target dir)
    // must still read and watch this checkout's migrations.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("../../../infra/migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut migrations: Vec<(u32, String, std::path::PathBuf)> = std::fs::read_dir(&dir)
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
            (version, name, p)
        })
        .collect();
    migrations.sort();
    if let Some(pair) = migrations.windows(2).find(|w| w[0].0 == w[1].0) {
        panic!("migrations {} and {} share a version", pair[0].1, pair[1].1);
    }
    let mut out = String::from(
        "/// Every migration known at build time, in version order.\npub const EMBEDDED: &[Migration] = &[\n",
    );
    for (version, name, path) in &migrations {
        println!("cargo:rerun-if-changed={}", path.display());
        let sql = std::fs::read_to_string(path).expect("migration readable");
        let checksum: String = Sha256::digest(sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let canonical = path.canonicalize().expect("migration path");
        let _ = writeln!(
            out,
            "    Migration {{ version: {version}, name: {name:?}, sql: include_str!({canonical:?}), checksum: {checksum:?} }},"
        );
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded.rs");
    std::fs::write(target, out).expect("write embedded.rs");
}
