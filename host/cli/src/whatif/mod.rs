//! `autoclose whatif`: one conversation log replayed under two or more
//! configurations, compared. The replays are the same as `autoclose replay`'s
//! ([`crate::replay`]); what differs is where their actions go:
//!
//! - [`tally`]: the counts of one configuration, as its replay goes;
//! - [`timeline`]: the timelines of the sessions whose outcome differs (a second
//!   replay records them, so the first keeps no history);
//! - [`summary`]: the comparison, as the JSON summary holds it;
//! - [`report`] and [`charts`]: the self-contained HTML report.

pub mod charts;
pub mod report;
pub mod summary;
pub mod tally;
pub mod timeline;
