//! Tests of the version tracks: histories, ticks, thresholds and the incident sums.

use super::super::stream::{FINE, MERGE};
use super::*;
use crate::analysis::histogram::LatencyHistogram;
use crate::model::Scope;

fn obs(latency_ns: u64, error: bool) -> Obs {
    Obs {
        latency_ns: Some(latency_ns),
        error,
        trace_id: None,
        n: 1,
    }
}

/// Feeds `ticks` (slot index, latencies) one tick each and returns the stream with, in
/// parallel, the dense per-slot counts the history must equal.
fn fed(ticks: &[(u64, Vec<u64>)]) -> (VersionTrack, Vec<(u64, Counts)>) {
    fed_judged(ticks, |_| true)
}

/// As [`fed`], with the version judged in the ticks `judged` picks (by position).
fn fed_judged(
    ticks: &[(u64, Vec<u64>)],
    judged: impl Fn(usize) -> bool,
) -> (VersionTrack, Vec<(u64, Counts)>) {
    let key = StreamKey {
        scope: Scope::SelfScope,
        peer: Name::default(),
        op: "GET /".into(),
    };
    let mut vt = VersionTrack::new(0);
    let mut model: Vec<(u64, Counts)> = Vec::new();
    for (j, (slot, lats)) in ticks.iter().enumerate() {
        vt.judged = judged(j);
        for (i, l) in lats.iter().enumerate() {
            vt.observe(key.clone(), obs(*l, i % 4 == 0), None, 8, slot * SLOT_NS);
        }
        let tick = vt.close_tick(slot * SLOT_NS);
        if let Some(c) = tick.get(&key) {
            match model.last_mut() {
                Some((i, m)) if i == slot => m.add(c),
                _ => model.push((*slot, c.clone())),
            }
        }
    }
    (vt, model)
}

fn sum(model: &[(u64, Counts)], pick: impl Fn(u64) -> bool) -> (u64, u64, LatencyHistogram) {
    let mut c = Counts::default();
    for (_, m) in model.iter().filter(|(i, _)| pick(*i)) {
        c.add(m);
    }
    (c.n, c.err, c.hist)
}

#[test]
fn frozen_history_equals_the_dense_slots_it_replaced() {
    let mut ticks = Vec::new();
    for second in 0..200u64 {
        // Data in most seconds, a silent stretch, values spread over four decades.
        if (60..95).contains(&second) {
            ticks.push((100 + second / 10, vec![]));
            continue;
        }
        let lats = (0..(second % 7))
            .map(|k| 1_000 * (1 + k * k * 997 + second * 13))
            .collect();
        ticks.push((100 + second / 10, lats));
    }
    let (vt, model) = fed(&ticks);
    let s = vt.streams.values().next().unwrap();
    // Slots before 113 (older than FINE) are merged: readers sum them whole.
    assert!(s.closed.len() < s.slot_count() && s.coarse > 0);
    for from in [0, 113, 116, 118, 119, 200] {
        let got = s.slots_since(from);
        let (n, err, hist) = sum(&model, |i| i >= from);
        assert_eq!((got.n, got.err), (n, err), "from {from}");
        assert_eq!(got.hist, hist, "from {from}");
        for q in [0.5, 0.9, 0.99] {
            assert_eq!(got.hist.quantile(q), hist.quantile(q));
        }
    }
    let (mut recent, mut older) = (Counts::default(), Counts::default());
    s.add_slots(|i| i + 3 > 119, &mut recent);
    s.add_slots(|i| i + 3 <= 119, &mut older);
    assert_eq!(recent.n + older.n, sum(&model, |_| true).0);
    assert_eq!(recent.hist, sum(&model, |i| i + 3 > 119).2);
}

#[test]
fn a_frozen_slot_takes_the_open_histograms_buffer_with_it() {
    let wide: Vec<u64> = vec![1_000, 3_000_000, 900_000_000];
    let (vt, _) = fed(&[(100, wide.clone()), (100, wide), (101, vec![])]);
    let s = vt.streams.values().next().unwrap();
    assert_eq!(s.slot_count(), 1);
    assert_eq!(s.open_heap_bytes(), 0);
    let (vt, _) = fed(&[(100, vec![1_000, 900_000_000]), (101, vec![2_000])]);
    let s = vt.streams.values().next().unwrap();
    let open = s.open_heap_bytes();
    assert!(
        open > 0 && open < 64,
        "the new slot holds its own range: {open}"
    );
}

/// Whether a version is judged changes only what its ticks hand over, never its
/// history: switching as deployments start and end loses and doubles nothing.
#[test]
fn history_does_not_depend_on_being_judged() {
    let ticks: Vec<(u64, Vec<u64>)> = (0..400u64)
        .map(|t| {
            let n = if (150..190).contains(&t) { 0 } else { t % 5 };
            (t / 10, (0..n).map(|k| 700 * (1 + k * 31 + t * t)).collect())
        })
        .collect();
    let (ticked, _) = fed(&ticks);
    let a = ticked.streams.values().next().unwrap();
    for (name, pick) in [
        ("never judged", &(|_| false) as &dyn Fn(usize) -> bool),
        ("judged now and then", &|j| (j / 7) % 3 == 0),
    ] {
        let (direct, counted) = fed_judged(&ticks, pick);
        let b = direct.streams.values().next().unwrap();
        assert_eq!(a.slot_count(), b.slot_count(), "{name}");
        for from in [0, 5, 14, 20, 33, 39, 40] {
            let (x, y) = (a.slots_since(from), b.slots_since(from));
            assert_eq!((x.n, x.err), (y.n, y.err), "{name} from {from}");
            assert_eq!(x.hist, y.hist, "{name} from {from}");
        }
        // Tick counts come only from the judged ticks.
        let judged_requests: u64 = ticks
            .iter()
            .enumerate()
            .filter(|(j, _)| pick(*j))
            .map(|(_, (_, l))| l.len() as u64)
            .sum();
        assert_eq!(
            counted.iter().map(|(_, c)| c.n).sum::<u64>(),
            judged_requests
        );
    }
}

#[test]
fn keeps_the_last_slots_that_had_data() {
    // One tick of data every other slot for 100 slots: the history keeps the last 25-30
    // (the oldest go six at a time once merged).
    let ticks: Vec<(u64, Vec<u64>)> = (0..200u64)
        .map(|i| (i, if i % 2 == 0 { vec![5_000 + i] } else { vec![] }))
        .collect();
    let (vt, model) = fed(&ticks);
    let s = vt.streams.values().next().unwrap();
    let held = s.slot_count();
    assert!((SLOTS - MERGE + 1..=SLOTS).contains(&held), "{held}");
    assert!(
        s.closed.len() <= FINE as usize + SLOTS / MERGE,
        "{}",
        s.closed.len()
    );
    let kept = &model[model.len() - held..];
    let got = s.slots_since(0);
    assert_eq!(got.n, held as u64);
    assert_eq!(got.hist, sum(kept, |_| true).2);
    // The last FINE slots stay single: 194, 196 and 198 had data.
    assert_eq!(s.slots_since(193).n, 3);
}

/// The self-scope stream of operation `op`.
fn op_key(op: &str) -> StreamKey {
    StreamKey {
        scope: Scope::SelfScope,
        peer: Name::default(),
        op: op.into(),
    }
}

/// Feeds 100 requests of latency `lat` to operation `op` of version v1 in one tick.
fn feed_op(svc: &mut ServiceTrack, op: &str, lat: u64, now: u64) {
    let vt = svc
        .versions
        .entry("v1".into())
        .or_insert_with(|| VersionTrack::new(now));
    for _ in 0..100 {
        vt.observe(op_key(op), obs(lat, false), None, 8, now);
    }
    vt.close_tick(now);
}

/// The p90 threshold of operation `op`.
fn p90_of(svc: &ServiceTrack, op: &str) -> Option<u64> {
    svc.thresholds.get(&op_key(op)).map(|t| t.base[0])
}

/// Thresholds are recomputed in full every few seconds and when the stable version
/// changes; in between, only a stream without one gets it.
#[test]
fn thresholds_refresh_in_full_every_few_seconds_and_at_once_for_new_streams() {
    let sec = 1_000_000_000u64;
    let t0 = 1_000 * THRESHOLD_REFRESH_SECS * sec;
    let mut svc = ServiceTrack {
        stable: Some("v1".into()),
        ..Default::default()
    };
    let refresh =
        |svc: &mut ServiceTrack, now: u64| svc.refresh_thresholds((now, true), &[0.9], 0.1, 0.25);
    feed_op(&mut svc, "a", 1_000_000, t0);
    refresh(&mut svc, t0);
    let first = p90_of(&svc, "a").expect("computed in full");
    // Much slower data and a new stream one second later: only the new stream moves.
    feed_op(&mut svc, "a", 50_000_000, t0 + sec);
    feed_op(&mut svc, "b", 2_000_000, t0 + sec);
    refresh(&mut svc, t0 + sec);
    assert_eq!(p90_of(&svc, "a"), Some(first));
    assert!(
        p90_of(&svc, "b").is_some(),
        "a new stream is not kept waiting"
    );
    // The next full refresh sees the slower data.
    refresh(&mut svc, t0 + THRESHOLD_REFRESH_SECS * sec);
    assert!(p90_of(&svc, "a").unwrap() > first);
    // A new stable version is read at once.
    svc.stable = Some("v2".into());
    svc.versions.insert("v2".into(), VersionTrack::new(t0));
    refresh(&mut svc, t0 + (THRESHOLD_REFRESH_SECS + 1) * sec);
    assert_eq!(p90_of(&svc, "a"), None, "v2 has no data yet");
}

/// A service without a live deployment refreshes in full only at its phase second, each
/// [`QUIET_REFRESH_SECS`] (new streams wait for it too); a deployment going live refreshes
/// at once, and from then on every [`THRESHOLD_REFRESH_SECS`].
#[test]
fn quiet_services_refresh_once_a_minute_and_at_once_when_a_deployment_goes_live() {
    let sec = 1_000_000_000u64;
    let phase = refresh_phase("prod", "checkout");
    // The first second after a start that is a quiet pass for this service.
    let t0 = (1_000 * QUIET_REFRESH_SECS + QUIET_REFRESH_SECS - phase) * sec;
    assert_eq!((t0 / sec + phase) % QUIET_REFRESH_SECS, 0);
    let mut svc = ServiceTrack {
        stable: Some("v1".into()),
        refresh_phase: phase,
        ..Default::default()
    };
    let refresh = |svc: &mut ServiceTrack, now: u64, live: bool| {
        svc.refresh_thresholds((now, live), &[0.9], 0.1, 0.25)
    };
    feed_op(&mut svc, "a", 1_000_000, t0);
    refresh(&mut svc, t0, false); // a new stable version: in full at once
    let first = p90_of(&svc, "a").expect("computed in full");
    // Slower data and a new stream: nothing moves in the quiet seconds, not even at a
    // live service's full-pass second.
    feed_op(&mut svc, "a", 50_000_000, t0 + sec);
    feed_op(&mut svc, "b", 2_000_000, t0 + sec);
    for s in 1..QUIET_REFRESH_SECS {
        refresh(&mut svc, t0 + s * sec, false);
        assert_eq!(
            (p90_of(&svc, "a"), p90_of(&svc, "b")),
            (Some(first), None),
            "{s}"
        );
    }
    refresh(&mut svc, t0 + QUIET_REFRESH_SECS * sec, false);
    let second = p90_of(&svc, "a").expect("the quiet pass");
    assert!(second > first && p90_of(&svc, "b").is_some());
    // A deployment goes live at a second that is no full pass: refreshed at once.
    feed_op(
        &mut svc,
        "a",
        900_000_000,
        t0 + (QUIET_REFRESH_SECS + 1) * sec,
    );
    let live_at = t0 + (QUIET_REFRESH_SECS + 1) * sec;
    assert_ne!((live_at / sec) % THRESHOLD_REFRESH_SECS, 0);
    refresh(&mut svc, live_at, true);
    let third = p90_of(&svc, "a").unwrap();
    assert!(third > second, "refreshed when the deployment went live");
    // While live, a new stream gets its threshold in the next second.
    feed_op(&mut svc, "c", 3_000_000, live_at + sec);
    refresh(&mut svc, live_at + sec, true);
    assert!(p90_of(&svc, "c").is_some());
    assert_eq!(p90_of(&svc, "a"), Some(third), "no full pass in between");
}

#[test]
fn refresh_phases_spread_services_over_the_minute() {
    let phases: std::collections::HashSet<u64> = (0..200)
        .map(|i| refresh_phase("prod", &format!("service-{i}")))
        .collect();
    assert!(phases.iter().all(|p| *p < QUIET_REFRESH_SECS));
    assert!(phases.len() > 40, "{} distinct phases", phases.len());
}

/// A stream too thin for a threshold is not rechecked until data arrives, and gets its
/// threshold at the first refresh after it holds ten requests with latency; requests
/// without latency (metrics with no duration) never make one.
#[test]
fn thin_streams_get_a_threshold_once_they_hold_ten_latencies() {
    let key = StreamKey {
        scope: Scope::Outgoing,
        peer: "db".into(),
        op: Name::default(),
    };
    let sec = 1_000_000_000u64;
    let t0 = 1_000 * THRESHOLD_REFRESH_SECS * sec + sec; // not a full-refresh second
    let mut svc = ServiceTrack {
        stable: Some("v1".into()),
        thresholds_of: Some("v1".into()),
        ..Default::default()
    };
    let feed = |svc: &mut ServiceTrack, o: Obs, n: usize, now: u64| {
        let vt = svc
            .versions
            .entry("v1".into())
            .or_insert_with(|| VersionTrack::new(now));
        for _ in 0..n {
            vt.observe(key.clone(), o, None, 8, now);
        }
        vt.close_tick(now);
    };
    let no_latency = Obs {
        latency_ns: None,
        ..obs(0, false)
    };
    feed(&mut svc, no_latency, 40, t0);
    feed(&mut svc, obs(3_000_000, false), 9, t0);
    svc.refresh_thresholds((t0, true), &[0.5], 0.1, 0.25);
    assert!(svc.thresholds.is_empty(), "9 latencies are too few");
    let thin = |svc: &ServiceTrack| svc.versions["v1"].streams[&key].too_thin;
    assert!(thin(&svc));
    svc.refresh_thresholds((t0 + sec, true), &[0.5], 0.1, 0.25);
    assert!(
        svc.thresholds.is_empty() && thin(&svc),
        "no data, no recheck"
    );
    feed(&mut svc, obs(3_000_000, false), 1, t0 + 2 * sec);
    assert!(!thin(&svc), "new data clears the mark");
    svc.refresh_thresholds((t0 + 2 * sec, true), &[0.5], 0.1, 0.25);
    let th = svc
        .thresholds
        .get(&key)
        .expect("ten latencies make a threshold");
    assert!(th.base[0].abs_diff(3_000_000) < 3_000_000 / 50, "{th:?}");
    assert!(!thin(&svc));
}

#[test]
fn older_self_sums_stay_those_of_a_fresh_sum() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let key = |scope, op: &str| StreamKey {
        scope,
        peer: if scope == Scope::SelfScope { "" } else { "db" }.into(),
        op: op.into(),
    };
    let mut vt = VersionTrack::new(0);
    let (mut cached, mut computed) = (0, 0);
    // Ten minutes of seconds: histories fill, merge and expire; streams appear late.
    for sec in 0..600u64 {
        let now = sec * 1_000_000_000;
        for _ in 0..rng.random_range(0..6) {
            let op = ["a", "b", "c"][rng.random_range(0..if sec < 200 { 2 } else { 3 })];
            let scope = [Scope::SelfScope, Scope::Outgoing][rng.random_range(0..2)];
            let o = obs(rng.random_range(1_000..9_000_000), rng.random_bool(0.1));
            vt.observe(key(scope, op), o, None, 8, now);
        }
        // Quiet stretches let slots pass without data.
        if (300..340).contains(&sec) {
            continue;
        }
        vt.close_tick(now);
        let slot = now / SLOT_NS;
        let before = vt.older_self;
        let got = vt.older_self(slot);
        if before == Some(got) {
            cached += 1;
        } else {
            computed += 1;
        }
        vt.older_self = None;
        assert_eq!(got, vt.older_self(slot), "second {sec}");
    }
    assert!(
        cached > 400 && computed > 50,
        "{cached} cached, {computed} summed"
    );
}

#[test]
fn skipping_thin_and_thresholded_streams_keeps_the_full_thresholds() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let track = || ServiceTrack {
        stable: Some("v1".into()),
        versions: [("v1".into(), VersionTrack::new(0))].into(),
        ..Default::default()
    };
    // `fast` refreshes as the judge does; `reference` checks every stream every time.
    let (mut fast, mut reference) = (track(), track());
    let (mut compared, mut thresholded) = (0, 0);
    for sec in 1..700u64 {
        let now = sec * 1_000_000_000;
        // Streams from busy to nearly silent; a quiet minute lets histories thin out.
        for i in 0..12usize {
            let rate = [8.0, 1.0, 0.3, 0.05][i % 4];
            let quiet = (400..470).contains(&sec) && i % 2 == 0;
            let n = if quiet {
                0
            } else {
                (rate * rng.random::<f64>() * 2.0) as usize
            };
            let key = StreamKey {
                scope: if i < 4 {
                    Scope::SelfScope
                } else {
                    Scope::Outgoing
                },
                peer: if i < 4 {
                    "".into()
                } else {
                    format!("p{i}").into()
                },
                op: if i < 4 {
                    format!("op{i}").into()
                } else {
                    "".into()
                },
            };
            for _ in 0..n {
                let o = obs(rng.random_range(1_000_000..5_000_000), false);
                for svc in [&mut fast, &mut reference] {
                    let vt = svc.versions.get_mut("v1").unwrap();
                    vt.observe(key.clone(), o, None, 32, now);
                }
            }
        }
        for svc in [&mut fast, &mut reference] {
            svc.versions.get_mut("v1").unwrap().close_tick(now);
        }
        for s in reference
            .versions
            .get_mut("v1")
            .unwrap()
            .streams
            .values_mut()
        {
            s.too_thin = false;
            s.thresholded = false;
        }
        fast.refresh_thresholds((now, true), &[0.5, 0.9], 0.1, 0.25);
        reference.refresh_thresholds((now, true), &[0.5, 0.9], 0.1, 0.25);
        for (k, s) in fast.versions["v1"].streams.iter() {
            assert_eq!(
                s.thresholded,
                fast.thresholds.contains_key(k),
                "{sec} {k:?}"
            );
            assert_eq!(s.history_requests(), s.requests_since(0));
        }
        if sec % THRESHOLD_REFRESH_SECS == 0 {
            assert_eq!(fast.thresholds, reference.thresholds, "second {sec}");
            compared += 1;
            thresholded += fast.thresholds.len();
        }
    }
    assert!(
        compared > 100 && thresholded > 500,
        "{compared} {thresholded}"
    );
}

#[test]
fn a_version_judged_late_hands_over_only_its_last_tick() {
    let key = StreamKey {
        scope: Scope::SelfScope,
        peer: Name::default(),
        op: "GET /".into(),
    };
    let sec = 1_000_000_000;
    let mut vt = VersionTrack::new(0);
    vt.judged = false;
    // Five unjudged seconds of 3 requests, across a slot boundary.
    for t in 8..13u64 {
        for _ in 0..3 {
            vt.observe(key.clone(), obs(1_000_000, false), None, 8, t * sec);
        }
        assert!(vt.close_tick(t * sec).is_empty());
    }
    // Slot 1 (10-19 s) is open with 9 requests; slot 0 (8, 9 s) was frozen at 10 s.
    let s = &vt.streams[&key];
    assert_eq!((s.requests_since(1), s.history_requests()), (9, 15));
    vt.observe(key.clone(), obs(1_000_000, true), None, 8, 13 * sec);
    vt.judged = true;
    let tick = vt.close_tick(13 * sec);
    assert_eq!(
        (tick[&key].n, tick[&key].err),
        (1, 1),
        "only the last second"
    );
    // A judged tick without data hands over nothing, and the next counts start afresh.
    assert!(vt.close_tick(14 * sec).is_empty());
    vt.observe(key.clone(), obs(1_000_000, false), None, 8, 15 * sec);
    assert_eq!(vt.close_tick(15 * sec)[&key].n, 1);
}
