//! Which version of a service is the running one (the baseline) when the judge first
//! sees several at once: a Flagger `-primary` workload first, then a version that was
//! clearly there earlier, then the one serving clearly more traffic; when none of that
//! separates them (a 50/50 canary seen from its first second), the older version number.

use super::track::VersionTrack;
use crate::model::{Name, UnixNanos};
use ahash::AHashMap as HashMap;
use std::cmp::Ordering;

/// How much earlier a version must have been seen to count as already running.
const EARLIER_NS: UnixNanos = 5_000_000_000;
/// How much more traffic a version must have served to count as the stable one.
const CLEARLY_MORE: f64 = 1.5;

/// The running version among `versions` (None when there are none).
pub fn pick(versions: &HashMap<Name, VersionTrack>) -> Option<Name> {
    let mut all: Vec<(&Name, &VersionTrack)> = versions.iter().collect();
    all.sort_by(compare);
    all.first().map(|(k, _)| (*k).clone())
}

/// Orders two versions, more likely stable first.
fn compare(a: &(&Name, &VersionTrack), b: &(&Name, &VersionTrack)) -> Ordering {
    let primary = |v: &VersionTrack| v.k8s.as_ref().is_some_and(|k| k.ends_with("-primary"));
    let (ta, tb) = (a.1, b.1);
    if primary(ta) != primary(tb) {
        return primary(tb).cmp(&primary(ta));
    }
    if ta.first_seen + EARLIER_NS <= tb.first_seen {
        return Ordering::Less;
    }
    if tb.first_seen + EARLIER_NS <= ta.first_seen {
        return Ordering::Greater;
    }
    let (sa, sb) = (ta.served_total as f64, tb.served_total as f64);
    if sa > sb * CLEARLY_MORE {
        return Ordering::Less;
    }
    if sb > sa * CLEARLY_MORE {
        return Ordering::Greater;
    }
    version_order(a.0, b.0)
}

/// Natural order of version strings: digit runs compare as numbers (`1.10` > `1.9`),
/// other runs as text; a leading `v` is ignored.
pub fn version_order(a: &str, b: &str) -> Ordering {
    let (a, b) = (
        a.trim_start_matches(['v', 'V']),
        b.trim_start_matches(['v', 'V']),
    );
    let (mut x, mut y) = (chunks(a), chunks(b));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u128>(), q.parse::<u128>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    _ => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// Splits into runs of digits and runs of other characters, dropping separators.
fn chunks(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(['.', '-', '_', '+']);
        let first = rest.chars().next()?;
        let digit = first.is_ascii_digit();
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digit || matches!(c, '.' | '-' | '_' | '+'))
            .unwrap_or(rest.len());
        let (head, tail) = rest.split_at(end);
        rest = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(first_seen: u64, served: u64, k8s: Option<&str>) -> VersionTrack {
        VersionTrack {
            first_seen,
            served_total: served,
            k8s: k8s.map(Name::from),
            ..Default::default()
        }
    }

    fn pick_of(v: Vec<(&str, VersionTrack)>) -> String {
        let m: HashMap<Name, VersionTrack> = v.into_iter().map(|(k, t)| (k.into(), t)).collect();
        pick(&m).unwrap().to_string()
    }

    #[test]
    fn versions_order_naturally() {
        assert_eq!(version_order("1.10.0", "1.9.3"), Ordering::Greater);
        assert_eq!(version_order("v2", "1.9"), Ordering::Greater);
        assert_eq!(version_order("2.2.0", "2.3.0"), Ordering::Less);
        assert_eq!(version_order("1.0.0-rc1", "1.0.0-rc2"), Ordering::Less);
        assert_eq!(version_order("abc", "abd"), Ordering::Less);
    }

    #[test]
    fn an_even_split_from_the_first_second_keeps_the_older_version() {
        let s = 1_000_000_000;
        let got = pick_of(vec![
            ("2.3.0", track(s, 510, None)),
            ("2.2.0", track(s, 490, None)),
        ]);
        assert_eq!(got, "2.2.0");
    }

    #[test]
    fn earlier_traffic_and_clearly_more_traffic_decide_before_the_number() {
        let s = 1_000_000_000;
        let earlier = pick_of(vec![
            ("1.0", track(s + 10 * s, 900, None)),
            ("2.0", track(s, 100, None)),
        ]);
        assert_eq!(earlier, "2.0", "seen 10 s earlier: already running");
        let busier = pick_of(vec![
            ("1.0", track(s, 100, None)),
            ("2.0", track(s, 900, None)),
        ]);
        assert_eq!(busier, "2.0", "9x the traffic: the running version");
        let primary = pick_of(vec![
            ("1.0", track(s, 900, Some("podinfo"))),
            ("2.0", track(s, 100, Some("podinfo-primary"))),
        ]);
        assert_eq!(primary, "2.0");
    }
}
