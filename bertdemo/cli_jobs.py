"""Command line for the app server's jobs (``bertdemo.jobs``), read from and written to the workspace's job table:
    python -m bertdemo jobs [--workspace DIR] [--json] [--owner NAME] [--active]
    python -m bertdemo jobs stop ID [--workspace DIR]
    python -m bertdemo jobs show ID [--since N] [--json]
Whoever can run this can read the workspace, so it sees every owner's jobs. ``stop`` writes the job's stop flag,
which the server's runner reads within a second (a queued job ends at the next start of a worker, or is listed as
interrupted after a restart)."""
from __future__ import annotations

import json
from datetime import datetime


def add_commands(sub) -> None:
    jobs = sub.add_parser("jobs", help="the app server's jobs: list them, show one, stop one")
    jobs.add_argument("action", nargs="?", default="list", choices=["list", "show", "stop"])
    jobs.add_argument("job_id", nargs="?")
    jobs.add_argument("--owner", help="only this owner's jobs")
    jobs.add_argument("--active", action="store_true", help="only queued and running jobs")
    jobs.add_argument("--since", type=int, default=0, help="show: the events after this number")
    jobs.add_argument("--workspace")
    jobs.add_argument("--json", action="store_true")


def cmd_jobs(args) -> int:
    from bertdemo.jobs import ACTIVE, JobStore

    store = JobStore.for_workspace(args.workspace)
    if args.action == "list":
        found = store.find(owner=args.owner, states=ACTIVE if args.active else ())
        if args.json:
            print(json.dumps([j.to_dict() for j in found], ensure_ascii=False))
            return 0
        for job in found:
            when = datetime.fromtimestamp(job.created).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{job.id}  {job.state:<11} {job.progress:>4.0%}  {when}  {job.kind:<13} {job.owner:<20} "
                  f"{job.title}  {job.result.get('run') or job.result.get('name') or ''}  {job.reason}")
        if not found:
            print("no jobs" + (" queued or running" if args.active else ""))
        return 0
    if not args.job_id:
        raise ValueError(f"jobs {args.action} needs a job id: python -m bertdemo jobs {args.action} ID "
                         "(python -m bertdemo jobs lists them).")
    job = store.get(args.job_id)
    if args.action == "show":
        events = store.events(job.id, args.since)
        if args.json:
            print(json.dumps({**job.to_dict(), "events": events}, ensure_ascii=False))
        else:
            print(f"{job.id}  {job.state}  {job.title}  {job.note}  {job.reason}")
            for event in events:
                print(json.dumps(event, ensure_ascii=False))
        return 0
    if not job.active:
        print(f"job {job.id} has already ended ({job.state})")
        return 0
    store.request_stop(job.id)
    print(f"asked job {job.id} to stop; the server stops it after the current step (a training keeps its best "
          "checkpoint)")
    return 0
