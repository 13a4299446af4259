//! Free-capacity arithmetic over a pool's units, pure so it can be tested exhaustively and
//! run anywhere: the free-units timeline (a step function) and the earliest slot.
//!
//! Inputs are what the database holds: the pool's size, its availability intervals, and
//! busy intervals per unit (reservations and blackouts alike). All intervals are `[start, end)`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub type Interval = (DateTime<Utc>, DateTime<Utc>);

/// From `at` on (until the next step), `free` units are free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Step {
    pub at: DateTime<Utc>,
    pub free: i64,
}

/// Merges overlapping or touching intervals into a sorted, disjoint list.
pub fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.retain(|(s, e)| s < e);
    intervals.sort();
    let mut out: Vec<Interval> = Vec::with_capacity(intervals.len());
    for (s, e) in intervals {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn covered(open: &[Interval], s: DateTime<Utc>, e: DateTime<Utc>) -> bool {
    // `open` is merged, so one interval must hold the whole window.
    open.iter().any(|(os, oe)| *os <= s && e <= *oe)
}

/// The free-units step function over `range`: `unit_count` minus units busy at each instant,
/// and 0 outside availability. `busy` holds every busy interval of every unit; a unit never
/// has two overlapping busy intervals (the database guarantees it).
pub fn timeline(
    unit_count: i64,
    open: &[Interval],
    busy: &[Interval],
    range: Interval,
) -> Vec<Step> {
    let (from, to) = range;
    let open = merge(open.to_vec());
    // (time, change in busy units, change in openness)
    let mut events: Vec<(DateTime<Utc>, i64, i64)> = Vec::new();
    for &(s, e) in busy {
        if s < to && e > from {
            events.push((s.max(from), 1, 0));
            events.push((e.min(to), -1, 0));
        }
    }
    for &(s, e) in &open {
        if s < to && e > from {
            events.push((s.max(from), 0, 1));
            events.push((e.min(to), 0, -1));
        }
    }
    events.sort();
    let mut steps: Vec<Step> = Vec::new();
    let (mut busy_now, mut open_now) = (0_i64, 0_i64);
    let mut i = 0;
    let mut t = from;
    loop {
        while i < events.len() && events[i].0 <= t {
            busy_now += events[i].1;
            open_now += events[i].2;
            i += 1;
        }
        let free = if open_now > 0 {
            (unit_count - busy_now).max(0)
        } else {
            0
        };
        if steps.last().map(|s| s.free) != Some(free) {
            steps.push(Step { at: t, free });
        }
        match events.get(i) {
            Some(&(next, _, _)) if next < to => t = next,
            _ => break,
        }
    }
    steps
}

/// The earliest start in `[from, latest_start]` at which `wanted` units are each free for
/// `hours` hours in a row, inside one availability interval. `per_unit_busy[u]` lists unit
/// u's busy intervals. `from` must be on the hour; the answer is on the hour.
pub fn earliest_slot(
    wanted: i64,
    hours: i64,
    open: &[Interval],
    per_unit_busy: &[Vec<Interval>],
    from: DateTime<Utc>,
    latest_start: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if wanted < 1 || hours < 1 || wanted > per_unit_busy.len() as i64 {
        return None;
    }
    let open = merge(open.to_vec());
    let d = Duration::hours(hours);
    // A feasible start can always be moved earlier until it hits `from`, an availability
    // start or the end of some busy interval; those are the only candidates.
    let mut candidates: Vec<DateTime<Utc>> = vec![from];
    candidates.extend(open.iter().map(|(s, _)| *s));
    candidates.extend(per_unit_busy.iter().flatten().map(|(_, e)| *e));
    candidates.retain(|c| *c >= from && *c <= latest_start);
    candidates.sort();
    candidates.dedup();
    candidates.into_iter().find(|&s| {
        let e = s + d;
        covered(&open, s, e)
            && per_unit_busy
                .iter()
                .filter(|unit| unit.iter().all(|(bs, be)| *be <= s || *bs >= e))
                .take(wanted as usize)
                .count() as i64
                == wanted
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn h(n: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap() + Duration::hours(n)
    }

    #[test]
    fn merges_touching_and_overlapping_intervals() {
        assert_eq!(
            merge(vec![(h(5), h(7)), (h(0), h(2)), (h(2), h(3)), (h(6), h(9))]),
            vec![(h(0), h(3)), (h(5), h(9))]
        );
    }

    #[test]
    fn timeline_steps_down_for_bookings_and_to_zero_outside_availability() {
        // 4 units, open [0, 10); unit A busy [2, 5), unit B busy [4, 8).
        let steps = timeline(
            4,
            &[(h(0), h(10))],
            &[(h(2), h(5)), (h(4), h(8))],
            (h(0), h(12)),
        );
        assert_eq!(
            steps,
            vec![
                Step { at: h(0), free: 4 },
                Step { at: h(2), free: 3 },
                Step { at: h(4), free: 2 },
                Step { at: h(5), free: 3 },
                Step { at: h(8), free: 4 },
                Step { at: h(10), free: 0 },
            ]
        );
    }

    #[test]
    fn timeline_of_a_range_starting_mid_booking() {
        let steps = timeline(2, &[(h(0), h(100))], &[(h(0), h(10))], (h(5), h(20)));
        assert_eq!(
            steps,
            vec![Step { at: h(5), free: 1 }, Step { at: h(10), free: 2 }]
        );
    }

    #[test]
    fn earliest_slot_waits_for_enough_units_for_the_whole_duration() {
        let open = [(h(0), h(100))];
        // Unit 0 busy [0, 10), unit 1 busy [5, 20), unit 2 free.
        let units = vec![vec![(h(0), h(10))], vec![(h(5), h(20))], vec![]];
        assert_eq!(earliest_slot(1, 5, &open, &units, h(0), h(99)), Some(h(0)));
        // Two units for 6 hours: unit 2 + unit 0 from hour 10.
        assert_eq!(earliest_slot(2, 6, &open, &units, h(0), h(99)), Some(h(10)));
        // All three: from hour 20.
        assert_eq!(earliest_slot(3, 1, &open, &units, h(0), h(99)), Some(h(20)));
        // More units than the pool has: never.
        assert_eq!(earliest_slot(4, 1, &open, &units, h(0), h(99)), None);
    }

    #[test]
    fn earliest_slot_stays_inside_one_availability_interval() {
        let open = [(h(0), h(5)), (h(10), h(30))];
        let units = vec![vec![]];
        assert_eq!(earliest_slot(1, 6, &open, &units, h(0), h(99)), Some(h(10)));
        assert_eq!(earliest_slot(1, 21, &open, &units, h(0), h(99)), None);
        // Touching windows count as one.
        let open = [(h(0), h(5)), (h(5), h(30))];
        assert_eq!(earliest_slot(1, 6, &open, &units, h(0), h(99)), Some(h(0)));
    }

    #[test]
    fn earliest_slot_respects_the_search_horizon() {
        let open = [(h(0), h(100))];
        let units = vec![vec![(h(0), h(50))]];
        assert_eq!(earliest_slot(1, 1, &open, &units, h(0), h(49)), None);
        assert_eq!(earliest_slot(1, 1, &open, &units, h(0), h(50)), Some(h(50)));
    }
}
