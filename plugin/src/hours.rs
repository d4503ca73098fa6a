//! Time zones and business hours: when a tenant's contact centre is open.
//!
//! Outside business hours a tenant either pauses the idle clock (a chat left at 17:58
//! with four minutes to go closes at 09:02 the next working day) or lets it run but
//! keeps warnings quiet (no push at 3 a.m.). Times of day are the tenant's local time
//! in an IANA zone, so daylight-saving changes are handled by the zone database
//! (jiff, with the database built in: a sandboxed component has no `/usr/share/zoneinfo`).

use std::collections::BTreeSet;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// A tenant's time zone, with the name it was configured by.
#[derive(Clone, Debug)]
pub struct Zone {
    name: String,
    zone: TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            name: "UTC".to_owned(),
            zone: TimeZone::UTC,
        }
    }
}

impl Zone {
    /// Looks up an IANA zone name such as `Europe/Lisbon` (or `UTC`).
    pub fn parse(name: &str) -> Result<Self, String> {
        TimeZone::get(name)
            .map(|zone| Zone {
                name: name.to_owned(),
                zone,
            })
            .map_err(|_| {
                format!("{name:?} is not a time zone (use an IANA name such as \"Europe/Lisbon\" or \"UTC\")")
            })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn zoned(&self, ms: u64) -> Zoned {
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        Timestamp::from_millisecond(ms)
            .unwrap_or(Timestamp::MAX)
            .to_zoned(self.zone.clone())
    }

    /// Formats `at` as local time for a message: `14:05` when it falls on the same
    /// local day as `now`, else `2026-11-26 09:02`.
    pub fn format_time(&self, at: u64, now: u64) -> String {
        let at = self.zoned(at);
        if at.date() == self.zoned(now).date() {
            at.strftime("%H:%M").to_string()
        } else {
            at.strftime("%Y-%m-%d %H:%M").to_string()
        }
    }

    /// The instant of local `date` at `minute` past midnight (1440: the next midnight).
    /// A time that does not exist (skipped by a daylight-saving change) is taken as
    /// the first instant after the gap.
    fn instant(&self, date: Date, minute: u16) -> Option<u64> {
        let (date, minute) = if minute >= MINUTES_PER_DAY {
            (date.tomorrow().ok()?, minute - MINUTES_PER_DAY)
        } else {
            (date, minute)
        };
        let time = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).ok()?;
        let zoned = date.to_datetime(time).to_zoned(self.zone.clone()).ok()?;
        u64::try_from(zoned.timestamp().as_millisecond()).ok()
    }
}

const MINUTES_PER_DAY: u16 = 24 * 60;

/// Weekday keys as written in config, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Most holidays a tenant may list.
pub const MAX_HOLIDAYS: usize = 1_000;

/// What happens outside business hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outside {
    /// The idle clock stops: only open time counts towards warnings and the close.
    Pause,
    /// The clock runs, the close happens, but warnings are neither posted nor pushed.
    SuppressWarnings,
}

/// Opening hours per weekday, holidays (closed all day), and what closed time means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessHours {
    /// Open ranges per weekday (Monday first) in minutes past local midnight, sorted
    /// and disjoint.
    weekly: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<Date>,
    /// What closed time does to a cycle.
    pub outside: Outside,
}

/// Longest search for open time: a little over three years of days, enough for a
/// week-long duration with one open hour a week and a thousand holidays.
const MAX_DAYS_SEARCHED: usize = 1_200;

impl BusinessHours {
    /// Builds business hours from checked parts. `weekly` is per weekday (Monday
    /// first) a list of `"HH:MM-HH:MM"` ranges; errors are `(sub-path, reason)` where
    /// the sub-path is relative to the `business_hours` object.
    pub fn parse(
        weekly: &[(String, Vec<String>)],
        holidays: &[String],
        outside: Outside,
    ) -> Result<Self, (String, String)> {
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        for (day, ranges) in weekly {
            let index = WEEKDAYS.iter().position(|d| d == day).ok_or_else(|| {
                (
                    crate::config::layers::join("weekly", day),
                    format!("{day:?} is not a weekday (use {})", WEEKDAYS.join(", ")),
                )
            })?;
            let mut parsed = Vec::with_capacity(ranges.len());
            for (i, range) in ranges.iter().enumerate() {
                let at = format!("{}[{i}]", crate::config::layers::join("weekly", day));
                let (start, end) = parse_range(range).map_err(|reason| (at.clone(), reason))?;
                if let Some(&(_, previous_end)) = parsed.last()
                    && start < previous_end
                {
                    return Err((
                        at,
                        format!(
                            "{range:?} starts before the previous range ends: list ranges in order, without overlaps"
                        ),
                    ));
                }
                parsed.push((start, end));
            }
            days[index] = parsed;
        }
        if holidays.len() > MAX_HOLIDAYS {
            return Err((
                "holidays".to_owned(),
                format!("{} holidays; at most {MAX_HOLIDAYS}", holidays.len()),
            ));
        }
        let mut dates = BTreeSet::new();
        for (i, holiday) in holidays.iter().enumerate() {
            let date = parse_date(holiday).ok_or_else(|| {
                (
                    format!("holidays[{i}]"),
                    format!("{holiday:?} is not a date (write it like \"2026-12-25\")"),
                )
            })?;
            dates.insert(date);
        }
        if outside == Outside::Pause && days.iter().all(Vec::is_empty) {
            return Err((
                "weekly".to_owned(),
                "no open hours at all: with outside \"pause\" no chat would ever close".to_owned(),
            ));
        }
        Ok(BusinessHours {
            weekly: days,
            holidays: dates,
            outside,
        })
    }

    /// The open windows of local `date`, as instants.
    fn windows(&self, zone: &Zone, date: Date) -> impl Iterator<Item = (u64, u64)> + '_ {
        let closed = self.holidays.contains(&date);
        let weekday = date.weekday().to_monday_zero_offset() as usize;
        let ranges: &[(u16, u16)] = if closed { &[] } else { &self.weekly[weekday] };
        let zone = zone.clone();
        ranges.iter().filter_map(move |&(start, end)| {
            Some((zone.instant(date, start)?, zone.instant(date, end)?))
        })
    }

    /// Whether `at` is within business hours.
    pub fn is_open(&self, zone: &Zone, at: u64) -> bool {
        let date = zone.zoned(at).date();
        // A range ending at 24:00 and a DST shift never reach past the next day, so
        // the day itself and the day before cover every window containing `at`.
        let yesterday = date.yesterday().ok();
        yesterday
            .into_iter()
            .chain(std::iter::once(date))
            .flat_map(|d| self.windows(zone, d).collect::<Vec<_>>())
            .any(|(start, end)| start <= at && at < end)
    }

    /// The instant at which `open_ms` of business time has passed since `from`:
    /// closed time does not count. Saturates far in the future if the calendar has
    /// no room (which configuration checks make impossible).
    pub fn add_open_time(&self, zone: &Zone, from: u64, open_ms: u64) -> u64 {
        let mut left = open_ms;
        let mut date = zone.zoned(from).date();
        if let Ok(yesterday) = date.yesterday() {
            date = yesterday;
        }
        for _ in 0..MAX_DAYS_SEARCHED {
            for (start, end) in self.windows(zone, date).collect::<Vec<_>>() {
                let start = start.max(from);
                if end <= start {
                    continue;
                }
                if end - start >= left {
                    return start + left;
                }
                left -= end - start;
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        u64::MAX / 2
    }
}

fn parse_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    text.parse::<Date>().ok()
}

/// Parses `"HH:MM-HH:MM"` (end may be `24:00`) into minutes past midnight.
fn parse_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{text:?} is not a range of times (write it like \"09:00-17:30\")");
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start = parse_minute(start.trim(), false).ok_or_else(bad)?;
    let end = parse_minute(end.trim(), true).ok_or_else(bad)?;
    if start >= end {
        return Err(format!(
            "{text:?} ends before it starts (a range past midnight is two ranges: \"22:00-24:00\" and \"00:00-02:00\" on the next day)"
        ));
    }
    Ok((start, end))
}

fn parse_minute(text: &str, allow_24: bool) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u16 = hours.parse().ok()?;
    let minutes: u16 = minutes.parse().ok()?;
    if hours == 24 && minutes == 0 && allow_24 {
        return Some(MINUTES_PER_DAY);
    }
    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u64 {
        let ts: Timestamp = text.parse().unwrap_or_else(|e| panic!("{e}"));
        ts.as_millisecond() as u64
    }

    fn weekdays_9_to_18(outside: Outside) -> BusinessHours {
        let weekly: Vec<(String, Vec<String>)> = ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|d| {
                (
                    (*d).to_owned(),
                    vec!["09:00-12:00".to_owned(), "13:00-18:00".to_owned()],
                )
            })
            .collect();
        BusinessHours::parse(&weekly, &["2026-12-25".to_owned()], outside)
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn lisbon() -> Zone {
        Zone::parse("Europe/Lisbon").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn open_and_closed_follow_local_time_lunch_weekends_and_holidays() {
        let hours = weekdays_9_to_18(Outside::Pause);
        let zone = Zone::parse("America/Sao_Paulo").unwrap_or_else(|e| panic!("{e}"));
        // 2026-11-25 is a Wednesday; São Paulo is UTC-3.
        assert!(hours.is_open(&zone, ms("2026-11-25T12:30:00Z"))); // 09:30 local
        assert!(!hours.is_open(&zone, ms("2026-11-25T11:30:00Z"))); // 08:30
        assert!(!hours.is_open(&zone, ms("2026-11-25T15:30:00Z"))); // 12:30 lunch
        assert!(!hours.is_open(&zone, ms("2026-11-25T21:00:00Z"))); // 18:00 closed
        assert!(!hours.is_open(&zone, ms("2026-11-28T15:00:00Z"))); // Saturday
        assert!(!hours.is_open(&zone, ms("2026-12-25T15:00:00Z"))); // holiday (Friday)
    }

    #[test]
    fn open_time_skips_nights_weekends_holidays_and_lunch() {
        let hours = weekdays_9_to_18(Outside::Pause);
        let zone = lisbon();
        // Wednesday 17:58 + 4 open minutes = Thursday 09:02 (Lisbon is UTC in winter).
        assert_eq!(
            hours.add_open_time(&zone, ms("2026-11-25T17:58:00Z"), 240_000),
            ms("2026-11-26T09:02:00Z")
        );
        // Friday 11:59 + 2 minutes = 13:01 (lunch skipped).
        assert_eq!(
            hours.add_open_time(&zone, ms("2026-11-27T11:59:00Z"), 120_000),
            ms("2026-11-27T13:01:00Z")
        );
        // Thursday 24 Dec 17:59 + 2 minutes: Friday is a holiday, so Monday 09:01.
        assert_eq!(
            hours.add_open_time(&zone, ms("2026-12-24T17:59:00Z"), 120_000),
            ms("2026-12-28T09:01:00Z")
        );
        // Starting on a Sunday night counts from Monday's opening.
        assert_eq!(
            hours.add_open_time(&zone, ms("2026-11-29T23:00:00Z"), 60_000),
            ms("2026-11-30T09:01:00Z")
        );
    }

    #[test]
    fn daylight_saving_changes_are_local_time() {
        let hours = weekdays_9_to_18(Outside::Pause);
        let zone = lisbon();
        // Summer: Lisbon is UTC+1, so 09:00 local is 08:00 UTC.
        assert!(hours.is_open(&zone, ms("2026-07-01T08:30:00Z")));
        assert!(!hours.is_open(&zone, ms("2026-07-01T07:30:00Z")));
        assert_eq!(
            zone.format_time(ms("2026-07-01T08:30:00Z"), ms("2026-07-01T08:00:00Z")),
            "09:30"
        );
        assert_eq!(
            zone.format_time(ms("2026-07-02T08:30:00Z"), ms("2026-07-01T08:00:00Z")),
            "2026-07-02 09:30"
        );
    }

    #[test]
    fn bad_hours_name_the_field() {
        let day =
            |d: &str, r: &[&str]| vec![(d.to_owned(), r.iter().map(|s| (*s).to_owned()).collect())];
        let err = |weekly: Vec<(String, Vec<String>)>, holidays: &[&str]| {
            let holidays: Vec<String> = holidays.iter().map(|s| (*s).to_owned()).collect();
            BusinessHours::parse(&weekly, &holidays, Outside::Pause).unwrap_err()
        };
        assert_eq!(err(day("monday", &["09:00-18:00"]), &[]).0, "weekly.monday");
        let (path, reason) = err(day("mon", &["9-18"]), &[]);
        assert_eq!(path, "weekly.mon[0]");
        assert!(reason.contains("not a range"), "{reason}");
        let (_, reason) = err(day("mon", &["18:00-09:00"]), &[]);
        assert!(reason.contains("ends before it starts"), "{reason}");
        let (path, reason) = err(day("mon", &["09:00-13:00", "12:00-18:00"]), &[]);
        assert_eq!(path, "weekly.mon[1]");
        assert!(reason.contains("overlaps"), "{reason}");
        let (path, reason) = err(day("mon", &["09:00-18:00"]), &["25/12/2026"]);
        assert_eq!(path, "holidays[0]");
        assert!(reason.contains("not a date"), "{reason}");
        assert_eq!(
            err(day("mon", &["09:00-18:00"]), &["2026-02-30"]).0,
            "holidays[0]"
        );
        assert_eq!(err(vec![], &[]).0, "weekly");
        assert!(BusinessHours::parse(&day("sat", &["00:00-24:00"]), &[], Outside::Pause).is_ok());
        assert!(
            Zone::parse("Mars/Olympus")
                .unwrap_err()
                .contains("not a time zone")
        );
    }
}
