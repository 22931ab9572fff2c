"""A real single-node SLURM on 127.0.0.1 for tests, from Debian's ``slurm-wlm`` and ``munge``.

:func:`local_slurm` writes a ``slurm.conf`` and a munge key into a folder, starts ``munged``,
``slurmctld`` and ``slurmd`` there (state, spool, logs and sockets in the folder, free ports,
no cgroups: ``proctrack/linuxproc``, ``task/none``), waits until the node is idle, and stops
the three daemons by pid on exit. Client commands (``sbatch``, ``squeue``, ``scancel``) find
this SLURM through ``SLURM_CONF`` in :attr:`LocalSlurm.env`.

The node declares more CPUs and memory than it has (``SlurmdParameters=config_overrides``),
so a 2-core machine runs several one-core jobs. Partition ``debug`` is up; partition
``closed`` is down (its jobs stay pending, for the tests that wait for workers in vain).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "scontrol")
NODE = "pbmnode"


def missing_binaries() -> list[str]:
    """The SLURM and munge programs this machine lacks (apt-get install slurm-wlm munge)."""
    return [name for name in BINARIES if shutil.which(name) is None]


@dataclass
class LocalSlurm:
    folder: Path
    env: dict  # os.environ with SLURM_CONF pointing at this SLURM
    partition: str = "debug"
    closed_partition: str = "closed"

    def run(self, *command: str, check: bool = True) -> str:
        """A SLURM client command against this SLURM; its stdout."""
        return subprocess.run(command, env=self.env, capture_output=True, text=True, check=check, timeout=30).stdout

    def jobs(self, *, all_states: bool = False) -> dict[str, str]:
        """Job id -> state; by default the queue (pending, running, completing), with ``all_states``
        also the jobs that ended in the last minutes (SLURM keeps them for ``MinJobAge``)."""
        out = self.run("squeue", "-h", "-o", "%i %T", *(["-t", "all"] if all_states else []))
        return dict(line.split() for line in out.splitlines() if line.strip())

    def wait_for_empty_queue(self, timeout: float = 60) -> dict[str, str]:
        """Wait until no job is pending, running or completing; what is left if the time ran out."""
        deadline = time.monotonic() + timeout
        while (left := self.jobs()) and time.monotonic() < deadline:
            time.sleep(0.5)
        return left


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(folder: Path, *, cpus: int, memory_mb: int) -> str:
    user = getpass.getuser()
    host = socket.gethostname().split(".")[0]
    return f"""\
ClusterName=pbmtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder / "munge.sock"}
StateSaveLocation={folder / "state"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={folder / "slurmctld.pid"}
SlurmdPidFile={folder / "slurmd.pid"}
SlurmctldLogFile={folder / "log" / "slurmctld.log"}
SlurmdLogFile={folder / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
SchedulerType=sched/builtin
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
KillWait=5
MinJobAge=600
NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
PartitionName=closed Nodes={NODE} MaxTime=INFINITE State=DOWN
"""


def _logs(folder: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted((folder / "log").iterdir()))


@contextmanager
def local_slurm(folder: Path, *, cpus: int = 4, memory_mb: int = 4096, timeout: float = 60):
    """Start munged, slurmctld and slurmd in ``folder``; yield a :class:`LocalSlurm`; stop them.

    Parameters
    ----------
    folder : Path
        An empty or new folder (kept: the daemons' logs are in ``log/``).
    cpus, memory_mb : int
        What the node declares (MB of memory).
    timeout : float
        Seconds to wait for the node to become idle.
    """
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # munged refuses a key or socket that others could reach
    for name in ("state", "spool", "log"):
        (folder / name).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = folder / "slurm.conf"
    conf.write_text(_conf(folder, cpus=cpus, memory_mb=memory_mb))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    commands = [
        ["munged", "--foreground", "--force", f"--socket={folder / 'munge.sock'}", f"--key-file={key}",
         f"--pid-file={folder / 'munged.pid'}", f"--seed-file={folder / 'munged.seed'}",
         f"--log-file={folder / 'log' / 'munged.log'}"],
        ["slurmctld", "-D", "-i", "-f", str(conf)],
        ["slurmd", "-D", "-N", NODE, "-f", str(conf)],
    ]
    daemons = []
    try:
        for command in commands:
            log = open(folder / "log" / f"{command[0]}.out", "wb")
            daemons.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True))
            log.close()
            if command[0] == "munged":
                _wait(lambda: (folder / "munge.sock").exists(), timeout, "munged did not create its socket", folder)
        slurm = LocalSlurm(folder, env)

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-p", "debug", "-o", "%t"], env=env, capture_output=True, text=True)
            return out.stdout.strip() == "idle"

        _wait(idle, timeout, "the SLURM node did not become idle", folder, daemons)
        yield slurm
    finally:
        for daemon in reversed(daemons):  # slurmd, slurmctld, munged: by pid
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait(timeout=15)


def _wait(condition, timeout: float, what: str, folder: Path, daemons=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        dead = [d.args[0] for d in daemons if d.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"{what} ({', '.join(dead) or 'timeout'}); logs:\n{_logs(folder)}")
        time.sleep(0.2)
