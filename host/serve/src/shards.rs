//! Sessions split across engines: each shard is an engine thread with its own gateway
//! (its own plugin instances) and its own store file, so different sessions proceed in
//! parallel while each session stays on one shard and keeps its order.
//!
//! The split is by a fixed hash of (tenant, session), the same in every build, so a
//! restart finds every session in the store file it was written to. The number of
//! shards is therefore fixed for a data directory: the store files are named after it,
//! and starting with another number is refused.

use std::path::{Path, PathBuf};

use autoclose_store::redb::FILE_NAME;

/// Most shards: more engines than cores only adds switching.
pub const MAX_SHARDS: usize = 64;

pub use autoclose_core::split::shard_of;

/// The store file of shard `index` of `shards`: `autoclose.redb` for a single shard,
/// `autoclose-<index>-of-<shards>.redb` otherwise.
pub fn store_file(index: usize, shards: usize) -> String {
    if shards == 1 {
        FILE_NAME.to_owned()
    } else {
        format!("autoclose-{index}-of-{shards}.redb")
    }
}

/// Checks that `dir` holds no store files of another shard count; returns the names
/// found that do not belong (empty when the layout matches or the directory is new).
pub fn foreign_store_files(dir: &Path, shards: usize) -> Vec<PathBuf> {
    let expected: Vec<String> = (0..shards).map(|i| store_file(i, shards)).collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut foreign: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("autoclose")
                && name.ends_with(".redb")
                && !expected.iter().any(|e| e == name)
        })
        .collect();
    foreign.sort();
    foreign
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_files_are_named_after_the_shard_count() {
        assert_eq!(store_file(0, 1), "autoclose.redb");
        assert_eq!(store_file(1, 2), "autoclose-1-of-2.redb");
        let dir = std::env::temp_dir().join(format!("autoclose-shards-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        assert!(foreign_store_files(&dir, 2).is_empty());
        std::fs::write(dir.join("autoclose.redb"), b"").expect("write");
        assert_eq!(
            foreign_store_files(&dir, 2),
            vec![dir.join("autoclose.redb")]
        );
        assert!(foreign_store_files(&dir, 1).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
