//! Which live node should own each shard: rendezvous (highest random weight) hashing
//! with bounded loads, computed alike by every node from the same list of live nodes.
//!
//! Each shard ranks the nodes by a hash of (node, shard) and goes to the first in its
//! ranking that has not reached its share (`shards / nodes`, and one more for the first
//! `shards % nodes` nodes to get there). Why: plain rendezvous
//! hashing moves the fewest shards when a node joins or leaves, but with a few shards
//! per node it is uneven (with 8 shards and 3 nodes, one node in nine gets none); the
//! bound makes every node's share the fair one, exactly, for about a third more moves
//! than the minimum. A round's plan is bounded too: a node gives away at most a few
//! shards per round, so a join moves work gradually instead of pausing every shard at
//! once.

/// What this node should do in one round of placement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Shards placed on this node that it does not hold: take them (each may still be
    /// held by its previous owner, until that one gives it away or its lease expires).
    pub take: Vec<usize>,
    /// Shards this node holds that are placed on another live node: give them away
    /// (at most the round's bound).
    pub give: Vec<usize>,
}

/// FNV-1a (64-bit) of `bytes`: a hash whose value never changes between builds.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64's step: every input bit reaches every output bit.
fn mix(mut hash: u64) -> u64 {
    hash = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// The rank of `node` for `shard` (higher first). Fixed across builds, so every
/// node, whatever its version, computes the same placement.
fn score(node: &str, shard: usize) -> u64 {
    mix(fnv(node.as_bytes()) ^ mix(shard as u64))
}

/// The node each of `shards` shards is placed on among `nodes` (all `None` when there
/// is none).
pub fn placement(shards: usize, nodes: &[String]) -> Vec<Option<&str>> {
    if nodes.is_empty() {
        return vec![None; shards];
    }
    // Every node gets `floor` shards, and `extra` of them one more.
    let floor = shards / nodes.len();
    let mut extra = shards % nodes.len();
    let mut load = vec![0usize; nodes.len()];
    let mut ranked: Vec<usize> = (0..nodes.len()).collect();
    (0..shards)
        .map(|shard| {
            ranked.sort_by_key(|&n| std::cmp::Reverse((score(&nodes[n], shard), &nodes[n])));
            let chosen = ranked
                .iter()
                .copied()
                .find(|&n| load[n] < floor || (load[n] == floor && extra > 0))?;
            if load[chosen] == floor {
                extra -= 1;
            }
            load[chosen] += 1;
            Some(nodes[chosen].as_str())
        })
        .collect()
}

/// This round's plan for node `me`, holding `held`, among the live `nodes`, over
/// `shards` shards; at most `max_give` shards are given away.
pub fn plan(me: &str, nodes: &[String], held: &[usize], shards: usize, max_give: usize) -> Plan {
    let mut plan = Plan::default();
    // A node that is not in the list yet (its first heartbeat not seen) keeps what
    // it holds rather than dropping everything.
    let listed = nodes.iter().any(|n| n == me);
    for (shard, placed) in placement(shards, nodes).into_iter().enumerate() {
        let holds = held.contains(&shard);
        match placed {
            Some(node) if node == me && !holds => plan.take.push(shard),
            Some(node) if node != me && holds && listed => plan.give.push(shard),
            _ => {}
        }
    }
    plan.give.truncate(max_give);
    plan
}

/// At most this many shards are given away per round: an eighth of them, at least
/// one.
pub fn max_give(shards: usize) -> usize {
    (shards / 8).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Node ids as `serve` makes them: host, process id, start time in ms.
    fn nodes(count: usize, seed: u64) -> Vec<String> {
        (0..count as u64)
            .map(|i| {
                format!(
                    "vm:{}:{}",
                    31_000 + seed * 7 + i * 19,
                    1_796_229_688_849 + seed * 1_000 + i * 600
                )
            })
            .collect()
    }

    fn share(placed: &[Option<&str>], node: &str) -> usize {
        placed.iter().filter(|p| **p == Some(node)).count()
    }

    #[test]
    fn every_node_gets_its_fair_share_exactly() {
        for seed in 0..50 {
            for (shards, count) in [(8, 3), (8, 2), (64, 3), (16, 5)] {
                let live = nodes(count, seed);
                let placed = placement(shards, &live);
                assert!(placed.iter().all(Option::is_some));
                for node in &live {
                    let got = share(&placed, node);
                    assert!(
                        got == shards / count || got == shards.div_ceil(count),
                        "{node}: {got} of {shards} among {count}"
                    );
                }
            }
        }
        assert_eq!(placement(2, &[]), vec![None, None]);
    }

    #[test]
    fn a_join_or_a_leave_moves_few_shards() {
        let mut total = 0;
        for seed in 0..50 {
            let four = nodes(4, seed);
            let three = four[..3].to_vec();
            let before = placement(64, &three);
            let after = placement(64, &four);
            let moved = (0..64).filter(|&s| before[s] != after[s]).count();
            // The new node's share is 16: at most half as many again move.
            assert!((16..=24).contains(&moved), "{moved} moved");
            assert_eq!(share(&after, &four[3]), 16);
            total += moved;
            // It leaves again: the placement is the one before.
            assert_eq!(placement(64, &three), before);
        }
        assert!(total < 50 * 20, "{total} moved in 50 joins");
    }

    #[test]
    fn a_plan_takes_what_is_placed_here_and_gives_a_bounded_number_away() {
        let live = nodes(2, 1);
        let (a, b) = (live[0].as_str(), live[1].as_str());
        let all: Vec<usize> = (0..16).collect();
        let placed = placement(16, &live);
        // a held everything while alone; b joined.
        let plan_a = plan(a, &live, &all, 16, 2);
        assert!(plan_a.take.is_empty());
        assert_eq!(plan_a.give.len(), 2);
        assert!(plan_a.give.iter().all(|&s| placed[s] == Some(b)));
        let plan_b = plan(b, &live, &[], 16, 2);
        assert_eq!(plan_b.take.len(), 8);
        assert!(plan_b.give.is_empty());
        // A node not yet seen alive gives nothing away.
        assert_eq!(plan("vm:1:1", &live, &all, 16, 2).give, Vec::<usize>::new());
        assert_eq!(max_give(1), 1);
        assert_eq!(max_give(64), 8);
    }
}
