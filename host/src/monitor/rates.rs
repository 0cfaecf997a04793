//! Events per second, from counts sampled every [`super::SAMPLE_EVERY`].

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How far back the rate looks.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Samples kept: ten minutes of them, for a chart of the last minutes.
pub const SAMPLES_KEPT: usize = 600;

/// Projections come and go in a running host: each sample holds the counts
/// of the projections running then.
type Counts = BTreeMap<String, u64>;

#[derive(Default)]
pub struct Rates {
    /// (when, handled count of each projection), oldest first.
    samples: VecDeque<(Instant, Counts)>,
}

impl Rates {
    pub fn add(&mut self, counts: impl IntoIterator<Item = (String, u64)>) {
        if self.samples.len() == SAMPLES_KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back((Instant::now(), counts.into_iter().collect()));
    }

    /// `name`'s events per second over the last [`RATE_WINDOW`] (or since
    /// its first sample in it); 0 before it has two.
    pub fn per_second(&self, name: &str) -> f64 {
        let Some((last_at, Some(last))) = self.samples.back().map(|(at, c)| (at, c.get(name))) else { return 0.0 };
        let first = self.samples.iter().filter(|(at, _)| last_at.duration_since(*at) <= RATE_WINDOW).find_map(|(at, c)| Some((at, c.get(name)?)));
        let Some((first_at, first)) = first else { return 0.0 };
        let seconds = last_at.duration_since(*first_at).as_secs_f64();
        if seconds > 0.0 {
            last.saturating_sub(*first) as f64 / seconds
        } else {
            0.0
        }
    }

    /// Each projection's events per second between samples, as (seconds
    /// ago, rate), oldest first, over the samples kept: the projections of
    /// the last sample, each over the samples that have it.
    pub fn history(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        let Some((now, names)) = self.samples.back() else { return Vec::new() };
        names
            .keys()
            .map(|name| {
                let points = self
                    .samples
                    .iter()
                    .zip(self.samples.iter().skip(1))
                    .filter_map(|((t0, c0), (t1, c1))| {
                        let seconds = t1.duration_since(*t0).as_secs_f64().max(1e-3);
                        Some((now.duration_since(*t1).as_secs_f64(), c1.get(name)?.saturating_sub(*c0.get(name)?) as f64 / seconds))
                    })
                    .collect();
                (name.clone(), points)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(a: u64) -> [(String, u64); 1] {
        [("a".to_owned(), a)]
    }

    #[test]
    fn the_rate_is_the_count_over_the_window_and_old_samples_go() {
        let mut rates = Rates::default();
        assert_eq!(rates.per_second("a"), 0.0);
        rates.add(sample(0));
        std::thread::sleep(Duration::from_millis(20));
        rates.add(sample(10));
        let rate = rates.per_second("a");
        assert!(rate > 0.0 && rate <= 10.0 / 0.02, "{rate}");
        for n in 0..SAMPLES_KEPT as u64 {
            rates.add(sample(n));
        }
        assert_eq!(rates.samples.len(), SAMPLES_KEPT);
    }

    #[test]
    fn a_projection_added_later_has_a_rate_from_its_own_samples_and_one_removed_leaves_the_chart() {
        let mut rates = Rates::default();
        rates.add(sample(5));
        std::thread::sleep(Duration::from_millis(10));
        rates.add([("a".to_owned(), 10), ("b".to_owned(), 100)]);
        assert_eq!(rates.per_second("b"), 0.0, "one sample of b: no rate yet");
        std::thread::sleep(Duration::from_millis(10));
        rates.add([("b".to_owned(), 200)]);
        assert!(rates.per_second("b") > 0.0);
        assert_eq!(rates.per_second("a"), 0.0, "a is gone");
        let history = rates.history();
        assert_eq!(history.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(history[0].1.len(), 1, "b's one step");
    }
}
