"""Jobs through a real SLURM scheduler: sbatch, submitit job arrays and requeue, and a Hydra
multirun through conf/hydra/launcher/slurm.yaml.

Needs the one-node loopback cluster of `sudo scripts/slurm_cluster.sh up` (skipped otherwise).
The tests refuse to submit to any other cluster unless TRANSFERSEP_SLURM_ANY_CLUSTER=1 (they
assume the test's tmp dir is visible from the compute node).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from project import ROOT

pytestmark = pytest.mark.slurm

WAIT_S = 240  # guard against a hung scheduler; jobs here take seconds


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)


def _job_fields(job_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict ({} once the controller has forgotten the job)."""
    out = _run(["scontrol", "show", "job", "-o", job_id]).stdout
    return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def _wait_submitit(jobs: list, what: str) -> None:
    """Polls submitit jobs until each has a result file. A job that dies without one
    (no sacct on the test cluster) would block `job.result()` for ever; this fails instead."""
    deadline = time.monotonic() + WAIT_S
    while not all(j.done() for j in jobs):
        if time.monotonic() > deadline:
            logs = "\n".join(
                f"--- {j.job_id} {_job_fields(j.job_id.split('_')[0]).get('JobState')}\n{j.stdout()}\n{j.stderr()}"
                for j in jobs
            )
            for j in jobs:
                j.cancel(check=False)
            pytest.fail(f"{what}: jobs not finished after {WAIT_S}s\n{logs}")
        time.sleep(1)


def test_sbatch_wrap_job_completes(partition: str, tmp_path: Path) -> None:
    out = tmp_path / "wrap-%j.out"
    sub = _run(
        [
            "sbatch",
            "--parsable",
            f"--partition={partition}",
            "--time=2",
            "--mem=100M",
            f"--output={out}",
            f"--chdir={tmp_path}",
            "--wrap",
            'echo "job=$SLURM_JOB_ID sum=$((17 + 25))"',
        ]
    )
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip().split(";")[0]
    deadline = time.monotonic() + WAIT_S
    fields = _job_fields(job_id)
    while fields.get("JobState") in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
        assert time.monotonic() < deadline, f"job {job_id} still {fields.get('JobState')} after {WAIT_S}s"
        time.sleep(0.5)
        fields = _job_fields(job_id)
    assert fields.get("JobState") == "COMPLETED", fields
    assert fields.get("ExitCode") == "0:0", fields
    log = tmp_path / f"wrap-{job_id}.out"
    assert log.read_text().split() == [f"job={job_id}", "sum=42"]


def test_submitit_job_array(partition: str, tmp_path: Path) -> None:
    submitit = pytest.importorskip("submitit")

    def task(k: int) -> tuple[int, int, str, str]:
        # defined here so cloudpickle ships it by value (the tests dir is not importable in a job)
        env = submitit.JobEnvironment()
        return k, sum(i * i for i in range(k)), env.job_id, os.environ["SLURM_ARRAY_JOB_ID"]

    executor = submitit.AutoExecutor(folder=tmp_path / "%j", cluster="slurm")
    executor.update_parameters(
        slurm_partition=partition,
        timeout_min=3,
        cpus_per_task=1,
        mem_gb=0.25,
        slurm_array_parallelism=2,
        name="tsep-test-array",
    )
    args = [3, 5, 10]
    jobs = executor.map_array(task, args)
    _wait_submitit(jobs, "job array")
    results = [j.result() for j in jobs]
    assert [(k, s) for k, s, _, _ in results] == [(3, 5), (5, 30), (10, 285)]
    array_ids = {arr for _, _, _, arr in results}
    assert len(array_ids) == 1, f"expected one SLURM job array, got {array_ids}"
    (array_id,) = array_ids
    assert sorted(jid for _, _, jid, _ in results) == [f"{array_id}_{i}" for i in range(3)]


def test_submitit_requeue_on_timeout_signal(partition: str, tmp_path: Path) -> None:
    """The time-limit signal makes submitit requeue a checkpointable job, which then runs again
    (what run resumption relies on). The signal is sent by hand instead of waiting minutes."""
    submitit = pytest.importorskip("submitit")

    class Resumable(submitit.helpers.Checkpointable):
        def __call__(self, marker_dir: str) -> list[str]:
            marker = Path(marker_dir)
            attempt = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
            (marker / f"attempt{attempt}").write_text(os.environ["SLURM_JOB_ID"])
            if attempt == 0:
                time.sleep(300)  # interrupted by the signal long before
            return sorted(p.name for p in marker.iterdir())

    markers = tmp_path / "markers"
    markers.mkdir()
    executor = submitit.AutoExecutor(folder=tmp_path / "%j", cluster="slurm", slurm_max_num_timeout=2)
    executor.update_parameters(
        slurm_partition=partition, timeout_min=10, cpus_per_task=1, mem_gb=0.25, name="tsep-test-requeue"
    )
    job = executor.submit(Resumable(), str(markers))
    deadline = time.monotonic() + WAIT_S
    while not (markers / "attempt0").exists():
        assert time.monotonic() < deadline, f"first attempt never started:\n{job.stdout()}\n{job.stderr()}"
        time.sleep(0.5)
    job._interrupt(timeout=True)  # submitit's own test hook: `scancel --signal USR2` (the timeout signal)
    _wait_submitit([job], "requeued job")
    assert job.result() == ["attempt0", "attempt1"]
    assert (markers / "attempt1").read_text() == job.job_id  # same SLURM job, requeued


APP = """
import os
import hydra

@hydra.main(version_base="1.3", config_path="conf", config_name="app")
def main(cfg):
    line = f"{cfg.x} {cfg.x ** 3} {os.environ['SLURM_JOB_ID']} {os.environ['SLURM_ARRAY_JOB_ID']}"
    with open(os.path.join(cfg.out_dir, f"x{cfg.x}.txt"), "w") as f:
        f.write(line + "\\n")

if __name__ == "__main__":
    main()
"""


def test_hydra_multirun_through_slurm_launcher(partition: str, tmp_path: Path) -> None:
    """A Hydra app composed with the project's conf/ on its search path, launched with
    hydra/launcher=slurm (the project's launcher config)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    (tmp_path / "conf").mkdir()
    (tmp_path / "app.py").write_text(APP)
    out_dir, sweep_dir = tmp_path / "out", tmp_path / "multirun"
    out_dir.mkdir()
    (tmp_path / "conf" / "app.yaml").write_text(
        textwrap.dedent(f"""\
        x: 0
        out_dir: {out_dir}
        hydra:
          searchpath: [file://{ROOT / "conf"}]
          sweep: {{dir: {sweep_dir}}}
        """)
    )
    name = f"tsep-test-{uuid.uuid4().hex[:8]}"
    # the keys a developer's conf/local/slurm.yaml may set for their real cluster are all
    # overridden here, so the test runs the same on every machine
    overrides = [
        "hydra/launcher=slurm",
        f"hydra.launcher.partition={partition}",
        "hydra.launcher.account=null",
        "hydra.launcher.qos=null",
        "hydra.launcher.constraint=null",
        "hydra.launcher.exclude=null",
        "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        "hydra.launcher.tasks_per_node=1",
        "hydra.launcher.timeout_min=5",
        "hydra.launcher.setup=[]",
        "hydra.launcher.additional_parameters={}",
        "hydra.launcher.array_parallelism=2",
        f"hydra.launcher.name={name}",
    ]
    cmd = [sys.executable, "app.py", "-m", "x=1,2,3", *overrides]
    try:
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=WAIT_S)
    except subprocess.TimeoutExpired as e:
        _run(["scancel", "--name", name])
        pytest.fail(f"hydra multirun did not finish in {WAIT_S}s\n{e.stdout}\n{e.stderr}")
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"

    rows = {}
    for x in (1, 2, 3):
        f = out_dir / f"x{x}.txt"
        assert f.exists(), f"job x={x} wrote nothing; launcher output:\n{proc.stderr}"
        got_x, cube, job_id, array_id = f.read_text().split()
        rows[int(got_x)] = (int(cube), job_id, array_id)
    assert {x: c for x, (c, _, _) in rows.items()} == {1: 1, 2: 8, 3: 27}
    array_ids = {a for _, _, a in rows.values()}
    assert len(array_ids) == 1, f"the three grid points should be one job array, got {array_ids}"
    # submitit_folder of the launcher config: <sweep dir>/.submitit/<job id>
    (array_id,) = array_ids
    assert (sweep_dir / ".submitit" / f"{array_id}_0").is_dir(), sorted((sweep_dir / ".submitit").glob("*"))
    # hydra wrote each job's config in its own sweep subdir
    assert len(list(sweep_dir.glob("*/.hydra/config.yaml"))) == 3
