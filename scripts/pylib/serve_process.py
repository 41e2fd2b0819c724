"""Servers started by scripts/test-serve and scripts/bench-serve, and their teardown.

    Server.attnax(bin, model, np=1, args=[...])   `attnax serve` at np 1, or under scripts/mpirun
                                                  with np ranks; waits for rank 0's
                                                  `listening on http://HOST:PORT` line (--port 0
                                                  is passed unless args name a port)
    Server(cmd, url=..., ready=probe)             any server command (the llama.cpp peer); ready
                                                  once probe() is true
    s.url, s.rank_pids(), s.signal(sig, rank=0), s.wait(timeout), s.stop(), s.log()
    metrics(text) -> {name: value}                Prometheus text, series of a name summed
    free_port()                                   a port nothing listens on now

Every server runs in its own session (setsid), so stopping it kills its process group: mpirun and
its ranks, or the peer and its threads. Every Server started is stopped at exit (atexit) and on
SIGTERM, SIGINT and SIGHUP (the handlers exit with 128 + the signal), so a test that fails, times
out (scripts/test's `timeout`) or is interrupted leaves no server behind. Standard library only.
"""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_LISTENING = re.compile(r"listening on http://(\S+?):(\d+)")
_started = []


class ServerFailed(Exception):
    """The server exited or never became ready; the message ends with its log's last lines."""


_logs = []


def _log_dir():
    """One temp directory for every server log of this process, removed at exit."""
    if not _logs:
        _logs.append(tempfile.mkdtemp(prefix="attnax-serve-logs."))
    return _logs[0]


def _cleanup():
    for s in list(_started):
        s.stop()
    for d in _logs:
        shutil.rmtree(d, ignore_errors=True)
    _logs.clear()


def _on_signal(signum, _frame):
    _cleanup()
    sys.exit(128 + signum)


atexit.register(_cleanup)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def alive(pid):
    """True while `pid` runs (a zombie no one reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(text):
    """{metric name: value} of Prometheus text (comments skipped; the series of one name summed,
    histogram _bucket/_sum/_count kept under their own names)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1) if "}" not in line else [line[:line.rindex("}") + 1], line[line.rindex("}") + 1:]]
        if len(parts) != 2:
            continue
        name = parts[0].split("{", 1)[0].strip()
        try:
            value = float(parts[1].split()[0])
        except (ValueError, IndexError):
            continue
        out[name] = out.get(name, 0.0) + value
    return out


class Server:
    def __init__(self, cmd, url=None, ready=None, env=None, startup=120.0, name="server"):
        """Starts `cmd` in its own session, its stdout and stderr to one log file, and waits up to
        `startup` s for it: for `ready()` to be true, or (url None) for the `listening on` line."""
        self.cmd, self.name, self.url = cmd, name, url
        self.returncode = None
        fd, self.log_path = tempfile.mkstemp(prefix=f"{name.split()[0]}-", suffix=".log", dir=_log_dir())
        self._log = os.fdopen(fd, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env=env)
        _started.append(self)
        deadline = time.monotonic() + startup
        while True:
            if self.url is None:
                m = _LISTENING.search(self.log())
                if m:
                    host = m.group(1).strip("[]")
                    self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{m.group(2)}"
            if self.url is not None and (ready is None or ready(self.url)):
                break
            if self.proc.poll() is not None:
                self.stop()
                raise ServerFailed(f"{name} exited with status {self.proc.returncode} before it was ready: {self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerFailed(f"{name} not ready after {startup:.0f} s: {self.tail()}")
            time.sleep(0.05)

    @classmethod
    def attnax(cls, binary, model, np=1, args=(), startup=120.0, name=None, env=None):
        args = list(args)
        if "--port" not in args:
            args += ["--port", "0"]
        if np == 1:
            cmd = [binary, "serve", "--model", model] + args
        else:
            cmd = [os.path.join(ROOT, "scripts", "mpirun"), "-np", str(np), binary, "serve", "--model", model] + args
        return cls(cmd, env=env, startup=startup, name=name or f"attnax serve (np {np})")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def tail(self, lines=8):
        return " | ".join(self.log().strip().splitlines()[-lines:])

    def rank_pids(self):
        """{rank: pid} of an mpirun job's ranks (its children, by OMPI_COMM_WORLD_RANK); {0: pid}
        for a single process."""
        if not self.cmd[0].endswith("mpirun"):
            return {0: self.proc.pid} if alive(self.proc.pid) else {}
        out = {}

        def children(pid):
            try:
                return subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
            except OSError:
                return []
        # scripts/mpirun runs mpirun as its child for serve (it hands signals to the ranks): the
        # ranks are the script's children or grandchildren.
        descendants = children(self.proc.pid)
        descendants += [g for c in descendants for g in children(c)]
        for pid in descendants:
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            except OSError:
                continue
            if b"OMPI_COMM_WORLD_RANK" in env:
                out[int(env[b"OMPI_COMM_WORLD_RANK"])] = int(pid)
        return out

    def signal(self, sig, rank=0):
        """Sends `sig` to one rank's process; returns its pid (None when not found)."""
        pid = self.rank_pids().get(rank)
        if pid is not None:
            os.kill(pid, sig)
        return pid

    def wait(self, timeout):
        """The exit status within `timeout` s, else None (the server still runs)."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self):
        """Kills the server's whole process group (it ran in its own session) and reaps it."""
        if self in _started:
            _started.remove(self)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if not self._log.closed:
            self._log.close()
