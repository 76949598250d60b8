//! Weekly digests per user.

use tubewatch_store::{Lease, Target};

use crate::pipeline::{JobError, Pipeline};

impl Pipeline {
    pub(crate) async fn run_digest(&self, target: &Target, _lease: &Lease) -> Result<(), JobError> {
        Err(JobError::Permanent(format!("{} targets are not handled by this version", target.kind)))
    }
}
