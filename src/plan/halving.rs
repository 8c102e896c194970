//! Successive halving's decisions: which configurations go on to the next rung and which stop
//! (pruned), from the rung results alone. Every decision is a pure function of the results on
//! disk, so a resumed sweep, several workers, several processes and Slurm shards all make the
//! same ones, and they do not depend on which results arrived first.
//!
//! **Seeds and rungs.** A configuration is judged, promoted and pruned as a whole: all its
//! seeds train to a rung, and its result there is the mean of its seeds' test metric, once every
//! seed has one. A seed that diverged before the rung makes the configuration's result NaN,
//! which ranks below every number. Ties go to the configuration earlier in the plan.
//!
//! **SHA** (synchronous): when every configuration that entered rung k has its result there,
//! the best max(1, ⌊n/η⌋) of those n go on to rung k+1 and the others are pruned at rung k.
//!
//! **ASHA** (asynchronous, Li et al. 2020): a configuration goes on as soon as it is among the
//! best ⌊m/η⌋ of the first m configurations with a result at that rung, without waiting for
//! the rung to fill. Real ASHA counts results in the order they arrive, which depends on timing;
//! here they count in a fixed order instead: at rung 0 a pseudo-random order of the
//! configurations, by the hash of their cell ids (`Ladder::arrival`; a grid's own order, e.g.
//! learning rates rising, would bias ASHA: with results that rise in arrival order it promotes
//! nearly everything), and at each later rung the order in which configurations were promoted
//! into it. Workers train in that order. A result counts once every configuration before it in
//! that order has one, so workers never wait for the whole rung, and the decisions are the same
//! on every run. When a rung is
//! complete, the configurations it did not promote are pruned there (and if it promoted none,
//! its best goes on, as in SHA).

use crate::grid::prune::{Halving, RungMetric};
use crate::trainer::record::{MetricRow, MetricSplit, RunRecord, RunStatus};

/// One configuration's result at one rung: None while some seed has not reached it.
pub type Score = Option<f64>;

/// The mean over a configuration's seeds of their rung results: None while a seed is pending
/// (every seed reaches the rung before its configuration is judged there); NaN when a seed
/// diverged before the rung (`Some(NAN)` from the seed).
pub fn config_score(seeds: &[Score]) -> Score {
    let values: Option<Vec<f64>> = seeds.iter().copied().collect();
    values.map(|v| match v.iter().any(|x| x.is_nan()) {
        true => f64::NAN,
        false => v.iter().sum::<f64>() / v.len().max(1) as f64,
    })
}

/// A finished run's result at the rung after `steps` steps: its test row there, or NaN when it
/// diverged at or before that step; None when it stopped (pruned) before the rung.
pub fn record_score(r: &RunRecord, steps: u64, metric: RungMetric) -> Score {
    if let RunStatus::Diverged { iteration, .. } = r.status {
        if iteration <= steps {
            return Some(f64::NAN);
        }
    }
    row_score(&r.metrics, steps, metric)
}

/// The metric of the test row after `steps` steps, if there is one.
pub fn row_score(rows: &[MetricRow], steps: u64, metric: RungMetric) -> Score {
    rows.iter()
        .find(|r| r.split == MetricSplit::Test && r.iteration == steps)
        .map(|r| match metric {
            RungMetric::TestAcc => r.acc,
            RungMetric::TestLoss => r.loss,
        })
}

/// What happened at one rung so far.
#[derive(Clone, Debug, PartialEq)]
pub struct RungView {
    /// The configurations that entered the rung, in the order their results count.
    pub entrants: Vec<usize>,
    /// Their results (None: pending).
    pub scores: Vec<Score>,
    /// The configurations promoted to the next rung, in the order they were.
    pub promoted: Vec<usize>,
    /// Every entrant is known and has its result: the rung's decisions are final.
    pub complete: bool,
}

/// Every decision so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Decisions {
    /// Per configuration: the rung it trains to (index into the ladder's rungs; the last one is
    /// the end of the budget).
    pub level: Vec<usize>,
    /// Per configuration: the rung it was pruned at, once that is final.
    pub pruned: Vec<Option<usize>>,
    /// Per paused rung (all but the last).
    pub rungs: Vec<RungView>,
}

/// Ranking order: numbers before NaN, better first, then earlier in the plan.
fn better(a: (f64, usize), b: (f64, usize), higher_is_better: bool) -> std::cmp::Ordering {
    let (x, y) = if higher_is_better {
        (-a.0, -b.0)
    } else {
        (a.0, b.0)
    };
    a.0.is_nan()
        .cmp(&b.0.is_nan())
        .then(x.total_cmp(&y))
        .then(a.1.cmp(&b.1))
}

/// The decisions from `scores[config][rung]` (one entry per paused rung), results counted in
/// plan order at rung 0.
pub fn decide(
    method: Halving,
    higher_is_better: bool,
    eta: u64,
    scores: &[Vec<Score>],
) -> Decisions {
    let order: Vec<usize> = (0..scores.len()).collect();
    decide_in(method, higher_is_better, eta, scores, &order)
}

/// [`decide`] with the results of rung 0 counted in `arrival` order (every configuration once).
pub fn decide_in(
    method: Halving,
    higher_is_better: bool,
    eta: u64,
    scores: &[Vec<Score>],
    arrival: &[usize],
) -> Decisions {
    let n_configs = scores.len();
    let paused = scores.first().map_or(0, Vec::len);
    let eta = eta.max(2) as usize;
    let mut level = vec![0; n_configs];
    let mut pruned = vec![None; n_configs];
    let mut rungs = Vec::with_capacity(paused);
    let mut entrants: Vec<usize> = arrival.to_vec();
    let mut entrants_final = true;
    let by_rung: Vec<Vec<Score>> = (0..paused)
        .map(|k| scores.iter().map(|s| s[k]).collect())
        .collect();
    for (k, all) in by_rung.iter().enumerate() {
        let rung_scores: Vec<Score> = entrants.iter().map(|&c| all[c]).collect();
        let m = rung_scores.iter().take_while(|s| s.is_some()).count();
        let complete = entrants_final && m == entrants.len();
        let key = |i: usize| (rung_scores[i].unwrap_or(f64::NAN), entrants[i]);
        let mut promoted: Vec<usize> = Vec::new();
        match method {
            Halving::Sha => {
                if complete {
                    let mut order: Vec<usize> = (0..entrants.len()).collect();
                    order.sort_by(|&a, &b| better(key(a), key(b), higher_is_better));
                    let q = (entrants.len() / eta).max(1).min(entrants.len());
                    promoted = order[..q].iter().map(|&i| entrants[i]).collect();
                }
            }
            Halving::Asha => {
                // The first m results in order, kept sorted best first; at each prefix the
                // best ⌊prefix/η⌋ go on. Those before were promoted at a shorter prefix, so
                // only the newcomer and the one at the quota's edge can be new.
                let mut sorted: Vec<usize> = Vec::with_capacity(m);
                let mut taken = vec![false; entrants.len()];
                for i in 0..m {
                    let at = sorted
                        .binary_search_by(|&j| better(key(j), key(i), higher_is_better))
                        .unwrap_or_else(|p| p);
                    sorted.insert(at, i);
                    let q = (i + 1) / eta;
                    for cand in [Some(at), q.checked_sub(1)].into_iter().flatten() {
                        if cand < q && !taken[sorted[cand]] {
                            taken[sorted[cand]] = true;
                            promoted.push(entrants[sorted[cand]]);
                        }
                    }
                }
                if complete && promoted.is_empty() && !sorted.is_empty() {
                    promoted.push(entrants[sorted[0]]);
                }
            }
        }
        for &c in &promoted {
            level[c] = k + 1;
        }
        if complete {
            for &c in &entrants {
                if !promoted.contains(&c) {
                    pruned[c] = Some(k);
                }
            }
        }
        rungs.push(RungView {
            entrants: entrants.clone(),
            scores: rung_scores,
            promoted: promoted.clone(),
            complete,
        });
        entrants = promoted;
        entrants_final = complete;
    }
    Decisions {
        level,
        pruned,
        rungs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Vec<Score> {
        v.iter().map(|&x| Some(x)).collect()
    }

    #[test]
    fn a_configuration_is_the_mean_of_its_seeds_and_nan_when_one_diverged() {
        assert_eq!(config_score(&[Some(0.5), Some(0.7)]), Some(0.6));
        assert_eq!(config_score(&[Some(0.5), None]), None);
        assert_eq!(
            config_score(&[None, Some(f64::NAN)]),
            None,
            "the other seed first"
        );
        assert!(config_score(&[Some(0.5), Some(f64::NAN)]).unwrap().is_nan());
    }

    /// Nine configurations with accuracies 0.1..0.9 at every rung (config i scores 0.1·(i+1)
    /// at rung 0; rung 1 reverses the order), η = 3.
    fn nine() -> Vec<Vec<Score>> {
        (0..9)
            .map(|i| vec![Some(0.1 * (i + 1) as f64), Some(1.0 - 0.1 * i as f64)])
            .collect()
    }

    #[test]
    fn sha_waits_for_the_rung_then_keeps_the_best_third() {
        let mut scores = nine();
        scores[4][0] = None;
        let d = decide(Halving::Sha, true, 3, &scores);
        assert_eq!(d.level, vec![0; 9], "rung 0 not complete: nothing decided");
        assert_eq!(d.pruned, vec![None; 9]);
        let d = decide(Halving::Sha, true, 3, &nine());
        // Rung 0: the best 3 are 8, 7, 6. Rung 1 (reversed): 6 is best of them, goes to the end.
        assert_eq!(d.rungs[0].promoted, vec![8, 7, 6]);
        assert_eq!(d.rungs[1].entrants, vec![8, 7, 6]);
        assert_eq!(d.rungs[1].promoted, vec![6]);
        assert_eq!(d.level, vec![0, 0, 0, 0, 0, 0, 2, 1, 1]);
        let pruned: Vec<Option<usize>> = (0..9)
            .map(|c| match c {
                0..=5 => Some(0),
                6 => None,
                _ => Some(1),
            })
            .collect();
        assert_eq!(d.pruned, pruned);
        // Loss: lower is better; NaN (a diverged seed) is last, ties go to the earlier.
        let scores = vec![
            s(&[f64::NAN]),
            s(&[0.3]),
            s(&[0.2]),
            s(&[0.2]),
            s(&[0.9]),
            s(&[0.1]),
        ];
        let d = decide(Halving::Sha, false, 3, &scores);
        assert_eq!(d.rungs[0].promoted, vec![5, 2]);
        // Fewer configurations than η: the best one still goes on.
        let d = decide(Halving::Sha, true, 3, &[s(&[0.2]), s(&[0.4])]);
        assert_eq!(d.level, vec![0, 1]);
        assert_eq!(d.pruned, vec![Some(0), None]);
    }

    #[test]
    fn asha_promotes_from_the_first_results_in_order_without_waiting() {
        // Rung 0 in plan order: 0.5, 0.9, 0.1, 0.3, 0.8, 0.2, 0.7, 0.4, 0.6. The best ⌊m/3⌋
        // of the first m: at m = 3 config 1 (0.9); at m = 6 also 4 (0.8); at m = 9 also 6
        // (0.7). Rung 1, in that promotion order (1, 4, 6) with 0.3, 0.9, 0.5: 4 goes on.
        let rung0 = [0.5, 0.9, 0.1, 0.3, 0.8, 0.2, 0.7, 0.4, 0.6];
        let rung1 = [
            None,
            Some(0.3),
            None,
            None,
            Some(0.9),
            None,
            Some(0.5),
            None,
            None,
        ];
        let scores: Vec<Vec<Score>> = (0..9).map(|c| vec![Some(rung0[c]), rung1[c]]).collect();
        let d = decide(Halving::Asha, true, 3, &scores);
        assert_eq!(d.rungs[0].promoted, vec![1, 4, 6]);
        assert!(d.rungs[0].complete);
        assert_eq!(d.rungs[1].entrants, vec![1, 4, 6]);
        assert_eq!(d.rungs[1].promoted, vec![4]);
        assert_eq!(d.level, vec![0, 1, 0, 0, 2, 0, 1, 0, 0]);
        let at = |r: usize| {
            (0..9)
                .filter(|&c| d.pruned[c] == Some(r))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(0), vec![0, 2, 3, 5, 7, 8]);
        assert_eq!(at(1), vec![1, 6]);

        // Config 4's result pending: only the first 4 results count. Config 1 goes on at once
        // (SHA would wait), nothing is pruned yet, and rung 1 (one entrant) decides nothing.
        let mut waiting = scores.clone();
        waiting[4][0] = None;
        let d = decide(Halving::Asha, true, 3, &waiting);
        assert_eq!(d.rungs[0].promoted, vec![1]);
        assert_eq!(d.level[1], 1);
        assert!(!d.rungs[0].complete);
        assert_eq!(d.pruned, vec![None; 9]);
        assert_eq!(d.rungs[1].promoted, Vec::<usize>::new());
        let d = decide(Halving::Sha, true, 3, &waiting);
        assert_eq!(d.level, vec![0; 9]);

        // Results that rise in plan order: ASHA promotes nearly all (its known weakness with
        // an unlucky order; a random search's trial order is random).
        let d = decide(Halving::Asha, true, 3, &nine());
        assert_eq!(d.rungs[0].promoted, vec![2, 3, 4, 5, 6, 7, 8]);
    }

    /// The same results give the same decisions whatever else is pending after them, and a
    /// decision once made stays (results only add up).
    #[test]
    fn decisions_only_grow_as_results_arrive() {
        let full = nine();
        for method in [Halving::Sha, Halving::Asha] {
            let mut before = decide(method, true, 3, &vec![vec![None, None]; 9]);
            for upto in 0..=9 {
                let mut partial = full.clone();
                for row in partial.iter_mut().skip(upto) {
                    row[0] = None;
                }
                for row in partial.iter_mut() {
                    row[1] = None;
                }
                let d = decide(method, true, 3, &partial);
                for c in 0..9 {
                    assert!(d.level[c] >= before.level[c], "{method:?} {upto} {c}");
                }
                assert!(before.rungs[0]
                    .promoted
                    .iter()
                    .all(|c| d.rungs[0].promoted.contains(c)));
                before = d;
            }
        }
    }
}
