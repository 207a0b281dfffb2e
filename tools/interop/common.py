"""Shared helpers for the interop tests: peers, ports, bounded processes and checks.

Every peer listens on 127.0.0.1 on an ephemeral port, is started and killed by the test itself
(its whole process group), and every wait has a deadline. A missing peer binary is a failure
under CI=true and a printed skip (exit 77, which ctest reports as skipped) otherwise.
"""

import atexit
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
IN_CI = os.environ.get("CI", "").lower() == "true"

# Peers still running; killed when the test exits in any way, including ctest's SIGTERM.
_live_peers = set()


def _kill_live_peers():
    for peer in list(_live_peers):
        peer.kill()


atexit.register(_kill_live_peers)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class Checks:
    """Counts named checks, prints one line each and the closing 'N passed, N failed' line."""

    def __init__(self, suite):
        self.suite = suite
        self.passed = 0
        self.failed = 0
        self.started = time.monotonic()

    def check(self, name, condition, detail=""):
        if condition:
            self.passed += 1
            print(f"ok   {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}", flush=True)
            if detail:
                for line in str(detail).splitlines()[:30]:
                    print(f"       {line}", flush=True)
        return condition

    def finish(self):
        seconds = time.monotonic() - self.started
        print(f"{self.suite}: {seconds:.1f} s", flush=True)
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def require(*programs):
    """Returns the full path of each program; if any is missing, fails under CI, else skips."""
    paths = []
    missing = []
    for program in programs:
        path = program if os.path.isabs(program) else shutil.which(program)
        if path is None or not os.access(path, os.X_OK):
            missing.append(program)
        paths.append(path)
    if missing:
        what = ", ".join(missing)
        if IN_CI:
            print(f"FAIL missing interop peer(s): {what} (CI=true; tools/setup installs them)")
            print("0 passed, 1 failed")
            sys.exit(1)
        print(f"SKIP missing interop peer(s): {what}; run tools/setup to install them")
        sys.exit(SKIP)
    return paths


def require_faultline(path):
    """The CLI under test is built, not installed: its absence is always a failure."""
    if not os.access(path, os.X_OK):
        print(f"FAIL {path} is not built (cmake --build BUILD --target faultline_cli)")
        print("0 passed, 1 failed")
        sys.exit(1)
    return path


def require_python_module(module):
    """Like require(), for a module of this (Debian's) Python."""
    try:
        __import__(module)
    except ImportError:
        require(f"python3 module {module} (package python3-{module})")


def free_port():
    """An ephemeral port that was free a moment ago (for peers that cannot bind port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Peer:
    """A child process in its own process group, killed (group-wide) on exit."""

    def __init__(self, argv, **popen_args):
        self.argv = argv
        self.process = subprocess.Popen(argv, start_new_session=True, **popen_args)
        _live_peers.add(self)

    def alive(self):
        return self.process.poll() is None

    def wait(self, seconds):
        """The exit status, or None if it is still running after `seconds`."""
        try:
            return self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        _live_peers.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def start_smtp_sink(smtp_sink, flags, deadline_s=5.0):
    """smtp-sink on 127.0.0.1:PORT with `flags`; returns (Peer, port) once it accepts.

    smtp-sink cannot report a port of its own choosing, so a free port is picked and the start
    is retried with another one if something else took it in between.
    """
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    with tempfile.TemporaryFile() as log:
        for _ in range(5):
            port = free_port()
            peer = Peer([smtp_sink, *user, *flags, f"127.0.0.1:{port}", "16"],
                        stdout=subprocess.DEVNULL, stderr=log)
            deadline = time.monotonic() + deadline_s
            while time.monotonic() < deadline and peer.alive():
                if accepts(port):
                    return peer, port
                time.sleep(0.02)  # polling interval of a bounded wait, not a synchronisation
            peer.kill()
        log.seek(0)
        raise RuntimeError(f"smtp-sink {' '.join(flags)} did not start: {log.read()!r}")


def run(argv, timeout_s=20, **args):
    """Runs a client to completion with a deadline; returns CompletedProcess (stdout/err bytes).

    On timeout the child's process group is killed and returncode is None."""
    peer = Peer(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=args.pop("stdin", subprocess.DEVNULL), **args)
    try:
        out, err = peer.process.communicate(timeout=timeout_s)
        return subprocess.CompletedProcess(argv, peer.process.returncode, out, err)
    except subprocess.TimeoutExpired:
        peer.kill()
        out, err = peer.process.communicate()
        return subprocess.CompletedProcess(argv, None, out, err)
    finally:
        peer.kill()


def send_mail(faultline, port, *options, timeout_ms=5000, body=None, timeout_s=20):
    """Runs `faultline send-mail` and returns (exit status, parsed JSON or None, raw output)."""
    argv = [faultline, "send-mail", "--host", "127.0.0.1", "--port", str(port),
            "--timeout", str(timeout_ms), *options]
    body_file = None
    if body is not None:
        body_file = tempfile.NamedTemporaryFile(prefix="faultline-body-", delete=False)
        body_file.write(body)
        body_file.close()
        argv += ["--body-file", body_file.name]
    try:
        result = run(argv, timeout_s=timeout_s)
    finally:
        if body_file is not None:
            os.unlink(body_file.name)
    text = result.stdout.decode("utf-8", "replace")
    outcome = None
    lines = text.strip().splitlines()
    if lines:
        try:
            outcome = json.loads(lines[-1])
        except json.JSONDecodeError:
            outcome = None
    raw = f"exit {result.returncode}\nstdout: {text}\nstderr: {result.stderr.decode('utf-8', 'replace')}"
    return result.returncode, outcome, raw


class FaultlineServer:
    """`faultline smtp-server --listen 127.0.0.1:0` with a script; reads its port from the
    'listening on' line, and after the clients ran waits for it to finish and loads the record."""

    def __init__(self, faultline, script, directory, max_sessions=1, max_seconds=20):
        self.directory = directory
        self.record_dir = os.path.join(directory, "record")
        script_file = os.path.join(directory, "script.json")
        with open(script_file, "w", encoding="utf-8") as out:
            json.dump(script, out)
        self.peer = Peer([faultline, "smtp-server", "--listen", "127.0.0.1:0", "--script",
                          script_file, "--record", self.record_dir, "--max-sessions",
                          str(max_sessions), "--max-seconds", str(max_seconds)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.port = None
        self.output = b""
        deadline = time.monotonic() + 10
        while self.port is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.peer.process.stdout], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(self.peer.process.stdout.fileno(), 4096)
            if not chunk:
                break
            self.output += chunk
            first = self.output.split(b"\n", 1)
            if len(first) == 2 and first[0].startswith(b"listening on "):
                self.port = int(first[0].rsplit(b":", 1)[1])
        if self.port is None:
            self.peer.kill()
            raise RuntimeError(f"faultline smtp-server did not start: {self.output!r}")

    def finish(self, seconds=15):
        """Waits for the server to stop after its sessions; returns its exit status."""
        try:
            out, _ = self.peer.process.communicate(timeout=seconds)
            self.output += out
        except subprocess.TimeoutExpired:
            self.peer.kill()
            return None
        return self.peer.process.returncode

    def session(self, number=1):
        path = os.path.join(self.record_dir, f"session-{number}.json")
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as record:
            return json.load(record)

    def message(self, session=1, number=1):
        path = os.path.join(self.record_dir, f"session-{session}-message-{number}.eml")
        if not os.path.exists(path):
            return None
        with open(path, "rb") as eml:
            return eml.read()

    def received(self, session=1):
        with open(os.path.join(self.record_dir, f"session-{session}.received"), "rb") as raw:
            return raw.read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.peer.kill()
