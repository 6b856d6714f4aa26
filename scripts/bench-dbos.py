#!/usr/bin/env python3
"""DBOS on PostgreSQL, on the saga `skald bench-cluster` measures: a comparison for the README.

The saga is the benchmark's "happy" one: three steps, reserve, charge and ship, each a `POST {participant}/ok/NAME`
with the body `{"order": ..., "amount": ..., "after": <the previous step's response id>}` (the first has no "after"),
each undone by `POST {participant}/ok/NAME-undo {"id": <its response id>}` (never called on this path). In DBOS it is
one workflow per run, each HTTP call a `@DBOS.step()`, the compensations in the workflow's `except` path (the saga
pattern of DBOS's documentation). The participant is Skald's own (`skald bench-participant`, a separate process), so
both engines call the same service.

PostgreSQL is set up as `skald bench-cluster` sets it up (Sources/SkaldDemo/PostgresCluster.swift): a throwaway
cluster made with initdb in a temporary directory, listening on 127.0.0.1 on a free port, fsync on,
synchronous_commit off (`--synchronous-commit on` for the other setting), max_connections 1000; as root the server
runs as the `postgres` account. It is removed at the end. `--db URL` uses a server of your own instead (its CPU is
only seen when it runs on this machine); each measurement gets a fresh database there, dropped afterwards.

For each concurrency C, a fresh database and a fresh Python process: DBOS is launched on it, then C threads each
start a workflow (`DBOS.start_workflow`, or the workflow function called directly with `--direct`), wait for its
result, and start the next, until `--runs` have finished. Printed: runs per second from the first start to the last
result; CPU per HTTP call the participant answered (user+sys from /proc): the Python process's, and that of the
PostgreSQL backends serving the database (the same measure as Skald's `CPU.postgres`).

From a fresh Debian/Ubuntu machine:

    sudo apt-get install -y postgresql python3-venv      # the benchmark starts a throwaway cluster of its own
    python3 -m venv /tmp/dbos-venv && /tmp/dbos-venv/bin/pip install dbos==3.4.0
    swift build -c release                               # for .build/release/skald bench-participant
    /tmp/dbos-venv/bin/python scripts/bench-dbos.py      # concurrency 16 and 64, 2000 runs each: about a minute
    /tmp/dbos-venv/bin/python scripts/bench-dbos.py --concurrency 16 --runs 200 --json

and Skald's side on the same settings: `.build/release/skald bench-cluster --scenarios happy --nodes 1`.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata

STEPS = ["reserve", "charge", "ship"]
RESULT_MARK = "BENCH-DBOS-RESULT "
TICKS = os.sysconf("SC_CLK_TCK")


# CPU from /proc, as Sources/skald/Bench/BenchClusterCommand.swift's `CPU` measures it.

def cpu_ms(pid):
    """User plus system time of a live process, in milliseconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split(" ")
    # After the name: state is field 3 (index 0 here), utime field 14 (index 11), stime field 15 (index 12).
    return (int(fields[11]) + int(fields[12])) / TICKS * 1000


def postgres_cpu_ms(database):
    """The CPU of the PostgreSQL server processes serving `database` now (its backends)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if command.startswith("postgres: ") and f" {database} " in command:
            total += cpu_ms(entry)
    return total


# The throwaway cluster, as PostgresCluster.start(durable: true, synchronousCommit: false) makes it.

def find_binaries():
    root = "/usr/lib/postgresql"
    versions = os.listdir(root) if os.path.isdir(root) else []
    for version in sorted(versions, key=lambda v: int(v) if v.isdigit() else 0, reverse=True):
        folder = os.path.join(root, version, "bin")
        if os.access(os.path.join(folder, "initdb"), os.X_OK):
            return folder
    for folder in os.environ.get("PATH", "").split(":"):
        if os.access(os.path.join(folder, "initdb"), os.X_OK) and os.access(os.path.join(folder, "pg_ctl"), os.X_OK):
            return folder
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    user = "skald"

    def __init__(self, synchronous_commit):
        self.directory = self.port = None
        try:
            self.start(synchronous_commit)
        except BaseException:
            self.stop()
            raise

    def start(self, synchronous_commit):
        self.bin = find_binaries()
        if self.bin is None:
            sys.exit("PostgreSQL's server programs (initdb, pg_ctl) were not found in /usr/lib/postgresql/*/bin or on PATH; "
                     "install Debian's postgresql package (apt-get install postgresql)")
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self.directory = tempfile.mkdtemp(prefix="bench-dbos-pg-")
        self.password = "pw-" + uuid.uuid4().hex[:12]
        pwfile = os.path.join(self.directory, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        if self.run_as:
            shutil.chown(self.directory, user=self.run_as)
            shutil.chown(pwfile, user=self.run_as)
        self.data = os.path.join(self.directory, "data")
        self.log = os.path.join(self.directory, "server.log")
        self.command("initdb", ["-D", self.data, "-U", self.user, f"--pwfile={pwfile}", "--auth-local=trust",
                                "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"])
        # The free port is found before the server binds it; another socket may take it in between: try another.
        for attempt in range(1, 6):
            self.port = free_port()
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} -c max_connections=1000"
            if not synchronous_commit:
                options += " -c synchronous_commit=off"
            try:
                self.command("pg_ctl", ["-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", options, "start"])
                return
            except RuntimeError:
                said = open(self.log).read() if os.path.exists(self.log) else ""
                if attempt == 5 or "Address already in use" not in said:
                    raise
                os.remove(self.log)

    def url(self, database="postgres"):
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def command(self, program, arguments):
        executable = os.path.join(self.bin, program)
        full = ["/usr/sbin/runuser", "-u", self.run_as, "--", executable] + arguments if self.run_as else [executable] + arguments
        done = subprocess.run(full, cwd=self.directory, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed (exit {done.returncode}): {done.stderr}{done.stdout}")

    def stop(self):
        if self.port is not None:
            try:
                self.command("pg_ctl", ["-D", self.data, "-m", "immediate", "-w", "stop"])
            except (RuntimeError, OSError):
                pass
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def with_database(url, database):
    parts = urllib.parse.urlsplit(url)
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    return urllib.parse.urlunsplit((scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def admin_all(url, statement):
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(statement).fetchall()


def admin(url, statement):
    import psycopg  # DBOS's own driver

    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchone() if cursor.description else None


# The participant: `skald bench-participant`, in a process of its own.

def start_participant(executable):
    if not os.access(executable, os.X_OK):
        sys.exit(f"{executable} was not found: build it (swift build -c release) or pass --skald PATH or --participant URL")
    process = subprocess.Popen([executable, "bench-participant"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if "listening on " not in line:
        process.kill()
        sys.exit(f"the benchmark participant did not start: {line!r}")
    return process, "http://127.0.0.1:" + line.split("listening on ")[1].strip()


def participant_requests(base):
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", parts.path + "/control/stats")
        return json.loads(connection.getresponse().read())["requests"]
    finally:
        connection.close()


# The DBOS side, run in a child process per measurement (`--measure`).

def measure(arguments):
    from dbos import DBOS

    base = urllib.parse.urlsplit(arguments.participant)
    local = threading.local()

    def post(path, body):
        """One POST on this thread's keep-alive connection to the participant; its JSON answer."""
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        for attempt in range(2):
            connection = getattr(local, "connection", None)
            if connection is None:
                connection = local.connection = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
            try:
                connection.request("POST", base.path + path, body=data, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server had closed: open another once.
                connection.close()
                local.connection = None
                if attempt == 1:
                    raise
        if not 200 <= response.status < 300:
            raise RuntimeError(f"POST {path} answered {response.status}: {payload[:200]!r}")
        return json.loads(payload)

    @DBOS.step()
    def call(name, body):
        return post(f"/ok/{name}", body)["id"]

    @DBOS.step()
    def undo(name, id):
        post(f"/ok/{name}-undo", {"id": id})

    @DBOS.workflow()
    def order_saga(order, amount):
        done = []
        try:
            after = None
            for name in STEPS:
                body = {"order": order, "amount": amount}
                if after is not None:
                    body["after"] = after
                after = call(name, body)
                done.append((name, after))
            return after
        except Exception:
            for name, id in reversed(done):
                undo(name, id)
            raise

    config = {"name": "skald-bench-dbos", "system_database_url": arguments.database_url, "log_level": "WARNING"}
    if arguments.pool_size:
        config["sys_db_pool_size"] = arguments.pool_size
    DBOS(config=config)
    DBOS.launch()
    database = urllib.parse.urlsplit(arguments.database_url).path.lstrip("/")

    def one(number):
        if arguments.direct:
            return order_saga(f"order-{number}", 1999)
        return DBOS.start_workflow(order_saga, f"order-{number}", 1999).get_result()

    next_number = iter(range(arguments.runs))
    lock = threading.Lock()
    failures = []

    def starter():
        while True:
            with lock:
                number = next(next_number, None)
            if number is None:
                return
            try:
                one(number)
            except Exception as error:  # counted; the run's compensations ran in the workflow
                failures.append(repr(error))

    calls_before = participant_requests(arguments.participant)
    python_before = cpu_ms(os.getpid())
    postgres_before = postgres_cpu_ms(database)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=arguments.concurrency) as pool:
        for _ in range(arguments.concurrency):
            pool.submit(starter)
    elapsed = time.perf_counter() - started
    python = cpu_ms(os.getpid()) - python_before
    postgres = postgres_cpu_ms(database) - postgres_before
    calls = participant_requests(arguments.participant) - calls_before
    DBOS.destroy()
    # What DBOS stored: a workflow row per run, an output row per step.
    statuses = dict(admin_all(arguments.database_url, "SELECT status, count(*) FROM dbos.workflow_status GROUP BY status"))
    steps = admin(arguments.database_url, "SELECT count(*) FROM dbos.operation_outputs")[0]
    print(RESULT_MARK + json.dumps({
        "seconds": elapsed, "httpCalls": calls, "pythonCpuMs": python, "postgresCpuMs": postgres,
        "failed": len(failures), "firstFailure": failures[0] if failures else None,
        "workflowStatuses": statuses, "stepsStored": steps,
    }), flush=True)


def main():
    parser = argparse.ArgumentParser(description="DBOS on PostgreSQL on the saga of skald bench-cluster's happy scenario.")
    parser.add_argument("--concurrency", default="16,64", help="Workflows in flight, separated by commas (default 16,64).")
    parser.add_argument("--runs", type=int, default=2000, help="Runs per measurement (default 2000).")
    parser.add_argument("--db", help="A PostgreSQL server URL to use instead of a throwaway cluster (a database is created "
                                     "and dropped there per measurement).")
    parser.add_argument("--synchronous-commit", choices=["on", "off"], default="off",
                        help="The throwaway cluster's synchronous_commit (default off, as skald bench-cluster's).")
    parser.add_argument("--pool-size", type=int, default=0, help="DBOS's sys_db_pool_size (default: DBOS's own, 20).")
    parser.add_argument("--direct", action="store_true",
                        help="Call the workflow function in the starting thread instead of DBOS.start_workflow + get_result.")
    parser.add_argument("--skald", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "release", "skald"),
                        help="The skald binary whose bench-participant is called (default .build/release/skald).")
    parser.add_argument("--participant", help="The URL of a running skald bench-participant, instead of starting one.")
    parser.add_argument("--json", action="store_true", help="Print only one JSON line per measurement.")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        arguments.concurrency = int(arguments.concurrency)
        return measure(arguments)

    concurrencies = [int(c) for c in arguments.concurrency.split(",") if c.strip()]
    if not concurrencies or min(concurrencies) < 1 or arguments.runs < 1:
        parser.error("--concurrency needs numbers of at least 1, --runs at least 1")
    try:
        dbos_version = metadata.version("dbos")
    except metadata.PackageNotFoundError:
        sys.exit(f"the dbos package is not installed for {sys.executable}: pip install dbos==3.4.0")

    # Cleanup also on SIGTERM (KeyboardInterrupt covers SIGINT).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cluster = participant = None
    created = []
    try:
        if arguments.participant:
            participant_url = arguments.participant.rstrip("/")
        else:
            participant, participant_url = start_participant(os.path.normpath(arguments.skald))
        if arguments.db:
            server_url = arguments.db
            setting = "PostgreSQL at " + urllib.parse.urlsplit(server_url).hostname
        else:
            cluster = Cluster(synchronous_commit=arguments.synchronous_commit == "on")
            server_url = cluster.url()
            setting = "PostgreSQL on 127.0.0.1"
        postgres_version = admin(server_url, "SHOW server_version")[0].split(" ")[0]
        synchronous = admin(server_url, "SHOW synchronous_commit")[0]
        fsync = admin(server_url, "SHOW fsync")[0]
        if not arguments.json:
            print(f"DBOS {dbos_version} benchmark: {os.cpu_count()} cores; {setting} {postgres_version} "
                  f"(fsync {fsync}, synchronous_commit {synchronous})")
            starting = "the workflow function called directly" if arguments.direct else "DBOS.start_workflow + get_result"
            print(f"Saga: 3 steps (reserve, charge, ship), each a @DBOS.step POST to skald bench-participant; "
                  f"{starting}, C at a time; sys_db_pool_size {arguments.pool_size or 'default (20)'}.")
            print("Everything (Python, PostgreSQL, participant) shares this machine.", flush=True)
        for concurrency in concurrencies:
            database = f"dbos_bench_c{concurrency}_{uuid.uuid4().hex[:8]}"
            admin(server_url, f'CREATE DATABASE "{database}"')
            created.append(database)
            child = [sys.executable, os.path.abspath(__file__), "--measure", "--concurrency", str(concurrency),
                     "--runs", str(arguments.runs), "--participant", participant_url,
                     "--database-url", with_database(server_url, database), "--pool-size", str(arguments.pool_size)]
            if arguments.direct:
                child.append("--direct")
            done = subprocess.run(child, stdout=subprocess.PIPE, text=True)
            lines = [l for l in done.stdout.splitlines() if l.startswith(RESULT_MARK)]
            if done.returncode != 0 or not lines:
                sys.exit(f"the DBOS measurement at concurrency {concurrency} failed (exit {done.returncode}):\n{done.stdout}")
            result = json.loads(lines[-1][len(RESULT_MARK):])
            calls = max(result["httpCalls"], 1)
            rate = arguments.runs / result["seconds"]
            python, postgres = result["pythonCpuMs"] / calls, result["postgresCpuMs"] / calls
            if arguments.json:
                print(json.dumps({
                    "engine": "dbos", "dbosVersion": dbos_version, "postgresVersion": postgres_version,
                    "synchronousCommit": synchronous, "fsync": fsync, "start": "direct" if arguments.direct else "start_workflow",
                    "concurrency": concurrency, "runs": arguments.runs, "seconds": result["seconds"], "runsPerSecond": rate,
                    "httpCalls": result["httpCalls"], "failedRuns": result["failed"],
                    "workflowsStored": result["workflowStatuses"], "stepsStored": result["stepsStored"],
                    "pythonCpuMsPerCall": python, "postgresCpuMsPerCall": postgres,
                }), flush=True)
            else:
                print(f"DBOS {dbos_version} on PostgreSQL {postgres_version}: concurrency {concurrency}: {arguments.runs} runs in "
                      f"{result['seconds']:.1f} s = {rate:.0f} runs/s; CPU per call: python {python:.3f} ms, "
                      f"PostgreSQL {postgres:.3f} ms", flush=True)
            stored = result["workflowStatuses"]
            if (result["failed"] or result["httpCalls"] != 3 * arguments.runs or stored != {"SUCCESS": arguments.runs}
                    or result["stepsStored"] != 3 * arguments.runs):
                print(f"warning: {result['failed']} runs failed (first: {result['firstFailure']}); "
                      f"{result['httpCalls']} calls answered, {3 * arguments.runs} expected; workflows stored {stored}, "
                      f"steps stored {result['stepsStored']}", file=sys.stderr, flush=True)
            if arguments.db:
                admin(server_url, f'DROP DATABASE "{database}" WITH (FORCE)')
                created.remove(database)
    finally:
        if arguments.db:
            for database in created:
                try:
                    admin(arguments.db, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                except Exception:
                    pass
        if cluster:
            cluster.stop()
        if participant:
            participant.kill()
            participant.wait()


if __name__ == "__main__":
    main()
