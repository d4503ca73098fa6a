//! The comparison of configurations, as `whatif --summary` writes it and the report
//! shows it.

use serde::Serialize;

use super::tally::{Counts, Outcome, Tally};
use super::timeline::Entry;

/// One configuration's results.
#[derive(Debug, Serialize)]
pub struct Configuration {
    /// Its label (`--label`, or the file name).
    pub label: String,
    /// The configuration file.
    pub file: String,
    /// Over every tenant and channel.
    pub totals: Counts,
    /// Per tenant and channel.
    pub by_channel: Vec<ChannelCounts>,
    /// Time from the last agent message to each close, in ms.
    pub close_delays_ms: Vec<u64>,
    /// Closes by hour of day (UTC of the log's clock).
    pub closes_by_hour: [u64; 24],
    /// How long its replay took, in ms.
    pub replay_ms: u64,
}

/// The counts of one tenant's channel.
#[derive(Debug, Serialize)]
pub struct ChannelCounts {
    /// The tenant.
    pub tenant: String,
    /// The channel.
    pub channel: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// A session the configurations treated differently.
#[derive(Debug, Serialize)]
pub struct Difference {
    /// The tenant.
    pub tenant: String,
    /// The session.
    pub session: String,
    /// What happened under each configuration, in words.
    pub outcomes: Vec<String>,
    /// Its timeline under each configuration.
    pub timelines: Vec<Vec<Entry>>,
}

/// The whole comparison.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The log.
    pub scenario: String,
    /// Events in it.
    pub events: u64,
    /// Each configuration.
    pub configurations: Vec<Configuration>,
    /// How many sessions the configurations treated differently.
    pub differing_sessions: u64,
    /// The first of them, with their timelines.
    pub differences: Vec<Difference>,
}

impl Configuration {
    /// The results of `tally`.
    pub fn of(label: String, file: String, tally: &Tally, replay_ms: u64) -> Self {
        Configuration {
            label,
            file,
            totals: tally.totals(),
            by_channel: tally
                .by_channel()
                .into_iter()
                .map(|((tenant, channel), counts)| ChannelCounts {
                    tenant,
                    channel,
                    counts,
                })
                .collect(),
            close_delays_ms: {
                let mut d = tally.close_delays_ms.clone();
                d.sort_unstable();
                d
            },
            closes_by_hour: tally.closes_by_hour,
            replay_ms,
        }
    }
}

/// The sessions whose outcome differs between any two of `tallies`, in the order the
/// log first named them, with each configuration's outcome.
pub fn differing(tallies: &[&Tally]) -> Vec<((String, String), Vec<Outcome>)> {
    let Some(first) = tallies.first() else {
        return Vec::new();
    };
    let others: Vec<std::collections::HashMap<(String, String), Outcome>> = tallies[1..]
        .iter()
        .map(|t| t.outcomes().into_iter().collect())
        .collect();
    first
        .outcomes()
        .into_iter()
        .filter_map(|(key, outcome)| {
            let mut all = vec![outcome];
            all.extend(
                others
                    .iter()
                    .map(|o| o.get(&key).copied().unwrap_or_default()),
            );
            all.iter()
                .any(|o| o.differs(&outcome))
                .then_some((key, all))
        })
        .collect()
}
