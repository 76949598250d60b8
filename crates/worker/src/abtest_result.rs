//! A finished A/B test's result: the one type the wrap-up writes (stored as JSON with the test)
//! and every reader (the pages, the API, the eval) parses back. A stored result that cannot be
//! read is an error the reader shows, never a result quietly left out.

use serde::{Deserialize, Serialize};
use tubewatch_core::abtest::AbAnalysis;
use tubewatch_store::{AbTest, AbTestId, ReachState};

use crate::reach::TestReachDay;

/// What the wrap-up stores as the test's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbResult {
    pub analysis: Option<AbAnalysis>,
    /// Why there is no analysis (e.g. a variant never got clean data).
    pub analysis_error: Option<String>,
    pub stopped_early: bool,
    /// The test stopped before its end because the always-valid (sequential) verdict was
    /// decided at an hourly look. (Absent from results stored before sequential tests.)
    #[serde(default)]
    pub decided_early: bool,
    /// `Some(v)`: variant v was applied; `None`: the original was restored (or nothing could be).
    pub applied_variant: Option<usize>,
    pub applied: String,
    /// The final state was read back from YouTube and matched.
    pub verified: bool,
    pub verification: String,
    pub periods_excluded: usize,
    pub quota_used: i64,
    pub outside_change: Option<String>,
    /// The owner's daily reach at the wrap-up (`not_granted` without the analytics scope) and
    /// the days received that cover the test, with the share of each day each variant was live;
    /// the analysis uses them beside the hourly views (see its `signal`). (Absent from results
    /// stored before reach: no reach was granted then.)
    #[serde(default = "reach_not_granted")]
    pub reach_state: ReachState,
    #[serde(default)]
    pub reach_days: Vec<TestReachDay>,
}

fn reach_not_granted() -> ReachState {
    ReachState::NotGranted
}

/// A test's stored result that does not parse as an [`AbResult`] (damaged, or written by an
/// incompatible version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored result of A/B test {test_id} cannot be read ({reason})")]
pub struct UnreadableResult {
    pub test_id: AbTestId,
    pub reason: String,
}

impl AbResult {
    /// The JSON stored with the test.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }

    /// The result stored with `test`: `None` until the test is wrapped up.
    pub fn stored(test: &AbTest) -> Result<Option<Self>, UnreadableResult> {
        let Some(json) = test.result_json.as_deref() else { return Ok(None) };
        serde_json::from_str(json).map(Some).map_err(|e| {
            tracing::warn!(test_id = test.id.get(), error = %e, "stored result of A/B test {} cannot be read", test.id);
            UnreadableResult { test_id: test.id, reason: e.to_string() }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn result() -> AbResult {
        AbResult {
            analysis: None,
            analysis_error: Some("the test ended before its first swap".into()),
            stopped_early: true,
            decided_early: false,
            applied_variant: None,
            applied: "the original is live".into(),
            verified: true,
            verification: "thumbnail matches".into(),
            periods_excluded: 1,
            quota_used: 151,
            outside_change: None,
            reach_state: ReachState::Receiving,
            reach_days: vec![TestReachDay {
                date: "2026-03-01".parse().unwrap(),
                impressions: 1200,
                ctr: 0.05,
                variant_share: vec![0.5, 0.5],
            }],
        }
    }

    #[test]
    fn a_result_reads_back_as_written() {
        let r = result();
        let back: AbResult = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn results_stored_before_reach_and_sequential_tests_still_read() {
        let mut old: serde_json::Value = serde_json::to_value(result()).unwrap();
        let map = old.as_object_mut().unwrap();
        for field in ["decided_early", "reach_state", "reach_days"] {
            map.remove(field);
        }
        let back: AbResult = serde_json::from_value(old).unwrap();
        assert_eq!((back.reach_state, back.reach_days.len(), back.decided_early), (ReachState::NotGranted, 0, false));
    }
}
