"""Long work owned by the server: the job table (``store``), the runner (``runner``), what each kind of job does
(``kinds``) and a training job's checkpoints across a crash (``checkpoints``)."""
from bertdemo.jobs.runner import JobContext, JobRunner
from bertdemo.jobs.store import ACTIVE, STATES, JobInfo, JobStore

__all__ = ["ACTIVE", "STATES", "JobContext", "JobInfo", "JobRunner", "JobStore"]
