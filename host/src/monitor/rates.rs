//! Events per second, from counts sampled every [`super::SAMPLE_EVERY`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the rate looks.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Samples kept: ten minutes of them, for a chart of the last minutes.
pub const SAMPLES_KEPT: usize = 600;

pub struct Rates {
    names: Vec<String>,
    /// (when, handled count of each projection), oldest first.
    samples: VecDeque<(Instant, Vec<u64>)>,
}

impl Rates {
    pub fn new(names: Vec<String>) -> Self {
        let zero = vec![0; names.len()];
        Self { names, samples: VecDeque::from([(Instant::now(), zero)]) }
    }

    pub fn add(&mut self, counts: Vec<u64>) {
        if self.samples.len() == SAMPLES_KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back((Instant::now(), counts));
    }

    /// Each projection's events per second over the last [`RATE_WINDOW`] (or since the first sample).
    pub fn per_second(&self) -> Vec<f64> {
        let Some((last_at, last)) = self.samples.back() else { return vec![0.0; self.names.len()] };
        let (first_at, first) = self
            .samples
            .iter()
            .find(|(at, _)| last_at.duration_since(*at) <= RATE_WINDOW)
            .expect("the last sample is within the window");
        let seconds = last_at.duration_since(*first_at).as_secs_f64();
        last.iter().zip(first).map(|(l, f)| if seconds > 0.0 { l.saturating_sub(*f) as f64 / seconds } else { 0.0 }).collect()
    }
}

impl Rates {
    /// Each projection's events per second between samples, as (seconds
    /// ago, rate), oldest first, over the samples kept.
    pub fn history(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        let Some((now, _)) = self.samples.back() else { return Vec::new() };
        self.names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let points = self
                    .samples
                    .iter()
                    .zip(self.samples.iter().skip(1))
                    .map(|((t0, c0), (t1, c1))| {
                        let seconds = t1.duration_since(*t0).as_secs_f64().max(1e-3);
                        (now.duration_since(*t1).as_secs_f64(), c1[i].saturating_sub(c0[i]) as f64 / seconds)
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

    #[test]
    fn the_rate_is_the_count_over_the_window_and_old_samples_go() {
        let mut rates = Rates::new(vec!["a".into()]);
        assert_eq!(rates.per_second(), vec![0.0]);
        std::thread::sleep(Duration::from_millis(20));
        rates.add(vec![10]);
        let rate = rates.per_second()[0];
        assert!(rate > 0.0 && rate <= 10.0 / 0.02, "{rate}");
        for n in 0..SAMPLES_KEPT as u64 {
            rates.add(vec![n]);
        }
        assert_eq!(rates.samples.len(), SAMPLES_KEPT);
    }
}
