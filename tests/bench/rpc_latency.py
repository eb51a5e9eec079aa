#!/usr/bin/env python3
"""Per-RPC latency of the all-in-one suite, as a foreign (Python grpcio) client sees it.

Starts the suite binary given by --suite on free ports in a throwaway data directory, prepares
the state every RPC needs, then times --calls sequential calls of each RPC on ONE channel (as a
city platform's script would): first at rest, then while a background thread on its own channel
registers --load petitions per second. Prints one Markdown table (p50/p99 in ms per RPC).

    python3 tests/bench/rpc_latency.py --suite /tmp/petition-suite-after [--calls 200] [--load 50]

The `petition` CLI must be built beside the suite (`cargo build --release -p petition-suite
-p petition-cli`): it prints the tokens. Needs `pip install grpcio grpcio-tools`. The protos are compiled into a temp dir at start, so no
generated code lives in the repository.
"""

import argparse
import itertools
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import grpc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Every call gets a deadline so that a wedged server fails the benchmark instead of hanging it.
DEADLINE_S = 10.0

# Sample 1 of tests/e2e/sample-petitions.jsonl: a housing grievance in Beiguan street, which the
# default rules route to the district housing bureau. All prepared cases use it so that one
# handler token reaches all of them.
BUREAU = "pingcheng.bureau"
HOLDER = "pingcheng.housing"
REVIEWER = "datong.housing"  # the organ one level above the holder: it takes 复查
TRANSFER_TO = "pingcheng.street.beiguan"


# --------------------------------------------------------------------------- protos


def compile_protos(out_dir):
    """Generates the petition.v1 modules into out_dir and imports them."""
    from grpc_tools import protoc
    import grpc_tools

    os.makedirs(out_dir, exist_ok=True)
    proto_root = os.path.join(REPO, "proto")
    # grpc_tools ships the well-known types (google/protobuf/timestamp.proto).
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = sorted(
        os.path.join("petition", "v1", f)
        for f in os.listdir(os.path.join(proto_root, "petition", "v1"))
        if f.endswith(".proto")
    )
    rc = protoc.main(
        ["protoc", f"-I{proto_root}", f"-I{wkt}", f"--python_out={out_dir}",
         f"--grpc_python_out={out_dir}"] + files
    )
    if rc != 0:
        sys.exit(f"protoc failed ({rc})")
    sys.path.insert(0, out_dir)
    global common, intake, routing, supervision, intake_grpc, routing_grpc, supervision_grpc
    global Timestamp
    from petition.v1 import common_pb2 as common
    from petition.v1 import intake_pb2 as intake
    from petition.v1 import routing_pb2 as routing
    from petition.v1 import supervision_pb2 as supervision
    from petition.v1 import intake_pb2_grpc as intake_grpc
    from petition.v1 import routing_pb2_grpc as routing_grpc
    from petition.v1 import supervision_pb2_grpc as supervision_grpc
    from google.protobuf.timestamp_pb2 import Timestamp


# --------------------------------------------------------------------------- the suite


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Suite:
    """The suite binary on free ports with its own data dir; stopped with SIGTERM."""

    def __init__(self, binary, work):
        self.binary = binary
        self.grpc_addr = f"127.0.0.1:{free_port()}"
        self.admin_addr = f"127.0.0.1:{free_port()}"
        self.data_dir = os.path.join(work, "data")
        os.makedirs(self.data_dir)
        self.log_path = os.path.join(work, "suite.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "--dev", "--listen", self.grpc_addr, "--admin-listen", self.admin_addr,
             "--data-dir", self.data_dir, "--log-format", "json"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

    def token(self, org, role):
        # The petition CLI, built beside the suite, signs with the development key the suite
        # checks under --dev.
        cli = os.path.join(os.path.dirname(self.binary), "petition")
        out = subprocess.run(
            [cli, "token", "issue", "--dev", "--org", org, "--role", role],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    def wait_ready(self, timeout=60):
        """Polls /readyz on the admin port until every relay and consumer is up."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                sys.exit(f"suite exited with {self.proc.returncode}; see log:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.admin_addr}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        sys.exit(f"suite not ready after {timeout}s:\n{self.tail()}")

    def tail(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read()[-3000:].decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------- requests


WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def resident_id(n):
    """A valid, distinct 18-digit resident ID per n (GB 11643 check digit): intake refuses a
    wrong check digit, and distinct petitioners keep the repeat detection out of the way."""
    day, month = 1 + n % 28, 1 + (n // 28) % 12
    year, seq = 1950 + (n // 336) % 50, (n // 16800) % 1000
    first17 = f"140213{year:04d}{month:02d}{day:02d}{seq:03d}"
    return first17 + CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def ts(seconds_ago=0.0):
    t = Timestamp()
    t.FromNanoseconds(int((time.time() - seconds_ago) * 1e9))
    return t


def petition(n, category="01.01", location="140213001"):
    # received a minute ago: intake refuses a petition received in its future (clock skew).
    return intake.RegisterPetitionRequest(
        channel=common.CHANNEL_ONLINE,
        received_by=BUREAU,
        received_at=ts(60),
        petitioners=[common.PetitionerInput(
            name=f"信访人{n}", id_type=common.ID_TYPE_RESIDENT_ID, id_number=resident_id(n),
            phone=f"139{n % 100_000_000:08d}", address="大同市平城区北关街道某小区", is_main=True)],
        category=category,
        problem_location=location,
        title="小区逾期未办理不动产权证",
        content="开发商承诺办理不动产权证，至今未办，请求督促开发商尽快办理。",
        people_present=1,
        people_affected=1,
    )


# Background load cycles over categories and streets as a real day does, routed to many organs.
LOAD_MIX = [("01.01", "140213001"), ("01.04", "140213002"), ("02.01", "140213003"),
            ("03.01", "140213200"), ("01.05", "140213001")]


# --------------------------------------------------------------------------- clients


class Clients:
    """Stubs on one channel plus the bearer metadata of every principal the benchmark uses."""

    def __init__(self, channel, tokens):
        self.intake = intake_grpc.IntakeServiceStub(channel)
        self.routing = routing_grpc.RoutingServiceStub(channel)
        self.supervision = supervision_grpc.SupervisionServiceStub(channel)
        self.md = {who: (("authorization", f"Bearer {tok}"),) for who, tok in tokens.items()}

    def call(self, method, req, who):
        return method(req, metadata=self.md[who], timeout=DEADLINE_S)


def wait_for(what, fn, timeout=30.0):
    """Retries fn() until it returns truthy: routing and supervision follow events
    asynchronously, so state set by one service shows up in another a few ms later."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            r = fn()
            if r:
                return r
        except grpc.RpcError as e:
            last = f"{e.code().name}: {e.details()}"
        time.sleep(0.02)
    raise TimeoutError(f"waiting for {what}" + (f" (last error {last})" if last else ""))


class Registrar:
    """Registers prepared cases (untimed) and keeps what later calls need."""

    def __init__(self, c, first_n):
        self.c = c
        self.n = itertools.count(first_n)

    def case(self):
        r = self.c.call(self.c.intake.RegisterPetition, petition(next(self.n)), "clerk")
        return r

    def routed_cases(self, k):
        """k cases registered and routed to the holder, awaiting acceptance."""
        regs = [self.case() for _ in range(k)]
        for r in regs:
            wait_for(f"routing of {r.case_number}", lambda: self.c.call(
                self.c.routing.GetAssignment, routing.GetAssignmentRequest(case_id=r.case_id),
                "handler").state == routing.ASSIGNMENT_STATE_AWAITING_ACCEPTANCE)
        return regs


# --------------------------------------------------------------------------- timing


class Result:
    def __init__(self, samples=None, status="OK"):
        self.samples = samples or []
        self.status = status


def pct(samples, q):
    """Nearest-rank percentile in ms."""
    s = sorted(samples)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def timed(method, requests, who, c, expect=grpc.StatusCode.OK):
    """Times each request sequentially. Stops at the first unexpected error and reports its
    code: a resisting RPC is reported, not retried (the benchmark is about latency)."""
    samples = []
    for req in requests:
        t0 = time.perf_counter()
        try:
            c.call(method, req, who)
            code = grpc.StatusCode.OK
            err = None
        except grpc.RpcError as e:
            code, err = e.code(), e
        dt = (time.perf_counter() - t0) * 1000.0
        if code != expect:
            detail = err.details() if err else "succeeded"
            return Result(samples, f"{code.name}: {detail}"[:110].replace("|", "/"))
        samples.append(dt)
    return Result(samples)


def run_phase(c, reg, calls, state):
    """Times every RPC once per phase; returns {(rpc, service): Result}.

    Write RPCs that consume state run along one chain of cases, each step feeding the next as a
    real case moves: accept -> request extension -> bureau decides it -> pause/resume the
    handling clock -> reply -> petitioner rates -> asks for review -> reviewer decides."""
    out = {}
    I, R, S = c.intake, c.routing, c.supervision
    known = state["known"]  # cases registered before any phase, for the read RPCs
    k = lambda i: known[i % len(known)]

    def record(name, service, result):
        out[(name, service)] = result
        print(f"  {name:24s} {result.status if result.status != 'OK' else 'ok'}",
              file=sys.stderr, flush=True)

    # Fresh cases for the writes of this phase (untimed), routed before the clock starts.
    chain = reg.routed_cases(calls)
    objected = reg.routed_cases(calls)
    transferred = reg.routed_cases(calls)
    misc = reg.routed_cases(calls)

    # ---- reads
    record("GetCase (existing)", "intake", timed(
        I.GetCase, [intake.GetCaseRequest(case_id=k(i).case_id) for i in range(calls)],
        "clerk", c))
    record("GetCase (by number)", "intake", timed(
        I.GetCase, [intake.GetCaseRequest(case_number=k(i).case_number) for i in range(calls)],
        "clerk", c))
    # An unknown id is answered NOT_FOUND: that answer is what gets timed.
    record("GetCase (unknown)", "intake", timed(
        I.GetCase, [intake.GetCaseRequest(case_id=f"0190a1b2-0000-7000-8000-{i:012d}")
                    for i in range(calls)], "clerk", c, expect=grpc.StatusCode.NOT_FOUND))
    record("ListCases", "intake", timed(
        I.ListCases, [intake.ListCasesRequest(page_size=20)] * calls, "clerk", c))
    record("LookupByQueryCode", "intake", timed(
        I.LookupByQueryCode, [intake.LookupByQueryCodeRequest(query_code=k(i).query_code)
                              for i in range(calls)], "clerk", c))
    record("GetPetitionerHistory", "intake", timed(
        I.GetPetitionerHistory, [intake.GetPetitionerHistoryRequest(
            id_type=common.ID_TYPE_RESIDENT_ID, id_number=state["known_ids"][i % len(known)])
            for i in range(calls)], "clerk", c))
    record("ListInbox", "routing", timed(
        R.ListInbox, [routing.ListInboxRequest(page_size=20)] * calls, "handler", c))
    record("GetAssignment", "routing", timed(
        R.GetAssignment, [routing.GetAssignmentRequest(case_id=k(i).case_id)
                          for i in range(calls)], "handler", c))
    record("ListTriage", "routing", timed(
        R.ListTriage, [routing.ListTriageRequest(page_size=20)] * calls, "clerk", c))
    record("GetTimeline", "supervision", timed(
        S.GetTimeline, [supervision.GetTimelineRequest(case_id=k(i).case_id)
                        for i in range(calls)], "supervisor", c))
    record("ListDue", "supervision", timed(
        S.ListDue, [supervision.ListDueRequest(organ=HOLDER, page_size=20)] * calls,
        "supervisor", c))
    record("ListNotices", "supervision", timed(
        S.ListNotices, [supervision.ListNoticesRequest(page_size=20)] * calls, "handler", c))
    record("ListBacklog", "supervision", timed(
        S.ListBacklog, [supervision.ListBacklogRequest(page_size=20)] * calls, "supervisor", c))

    # ---- writes: registration
    record("RegisterPetition", "intake", timed(
        I.RegisterPetition, [petition(next(reg.n)) for _ in range(calls)], "clerk", c))

    # ---- writes: one case's life, one case per call
    ids = [r.case_id for r in chain]
    record("AcceptCase", "routing", timed(
        R.AcceptCase, [routing.AcceptCaseRequest(case_id=i, request_id=f"acc-{i}")
                       for i in ids], "handler", c))
    record("RequestExtension", "routing", timed(
        R.RequestExtension, [routing.RequestExtensionRequest(
            case_id=i, days=30, reason="a survey of the building is needed",
            request_id=f"ext-{i}") for i in ids], "handler", c))
    try:  # supervision learns of the request from routing's event
        for i in ids:
            wait_for("extension request in supervision", lambda: c.call(
                S.GetTimeline, supervision.GetTimelineRequest(case_id=i),
                "supervisor").extension_requested_days == 30, timeout=10)
    except TimeoutError:
        pass  # DecideExtension will report what it gets
    record("DecideExtension", "supervision", timed(
        S.DecideExtension, [supervision.DecideExtensionRequest(
            case_id=i, approve=True, reason="the survey takes four weeks",
            request_id=f"dec-{i}") for i in ids], "supervisor", c))
    record("PauseClock", "supervision", timed(
        S.PauseClock, [supervision.PauseClockRequest(
            case_id=i, clock=supervision.CLOCK_KIND_HANDLING, reason="hearing (听证)",
            request_id=f"pause-{i}") for i in ids], "handler", c))
    record("ResumeClock", "supervision", timed(
        S.ResumeClock, [supervision.ResumeClockRequest(
            case_id=i, clock=supervision.CLOCK_KIND_HANDLING, reason="hearing held",
            request_id=f"resume-{i}") for i in ids], "handler", c))
    # A generator, so served_at is "now" at each call: service may not precede acceptance,
    # which was only milliseconds earlier for the last cases of the chain.
    record("SubmitReply", "routing", timed(
        R.SubmitReply, (routing.SubmitReplyRequest(
            case_id=i, outcome=routing.REPLY_OUTCOME_EXPLAINED,
            text="the repairs are the developer's duty; the bureau has ordered them",
            legal_basis="《物业管理条例》",
            service=routing.ServiceRecord(mode=routing.SERVICE_MODE_IN_PERSON, served_at=ts(0),
                                          signed=True, view=routing.PETITIONER_VIEW_DISAGREES),
            request_id=f"reply-{i}") for i in ids), "handler", c))
    try:  # the rating and review windows open when supervision sees the answer
        for i in ids:
            wait_for("answer in supervision", lambda: c.call(
                S.GetTimeline, supervision.GetTimelineRequest(case_id=i),
                "supervisor").stage == supervision.CASE_STAGE_ANSWERED, timeout=10)
    except TimeoutError:
        pass
    record("RateCase", "supervision", timed(
        S.RateCase, [supervision.RateCaseRequest(
            case_number=r.case_number, query_code=r.query_code,
            bureau=supervision.SATISFACTION_SATISFIED, organ=supervision.SATISFACTION_SATISFIED,
            request_id=f"rate-{r.case_id}") for r in chain], "clerk", c))
    record("RequestReview", "supervision", timed(
        S.RequestReview, [supervision.RequestReviewRequest(
            case_number=r.case_number, query_code=r.query_code,
            reason="the reply ignores the leak in the roof",
            request_id=f"rev-{r.case_id}") for r in chain], "clerk", c))
    record("DecideReview", "supervision", timed(
        S.DecideReview, [supervision.DecideReviewRequest(
            case_id=i, decision=supervision.REVIEW_DECISION_UPHOLD,
            opinion="the district's reply stands", request_id=f"drev-{i}") for i in ids],
        "reviewer", c))

    # ---- writes: objection and its resolution by the forwarding bureau
    ids = [r.case_id for r in objected]
    record("ObjectToAssignment", "routing", timed(
        R.ObjectToAssignment, [routing.ObjectToAssignmentRequest(
            case_id=i, reason="the matter is the street office's", request_id=f"obj-{i}")
            for i in ids], "handler", c))
    record("ResolveObjection", "routing", timed(
        R.ResolveObjection, [routing.ResolveObjectionRequest(
            case_id=i, agree=False, reason="housing is the housing bureau's field",
            request_id=f"res-{i}") for i in ids], "clerk", c))

    # ---- writes: transfer by the holder, manual routing by the bureau
    ids = [r.case_id for r in transferred]
    record("TransferCase", "routing", timed(
        R.TransferCase, [routing.TransferCaseRequest(
            case_id=i, organ=TRANSFER_TO, reason="a matter of the street office",
            request_id=f"tr-{i}") for i in ids], "handler", c))
    record("RouteManually", "routing", timed(
        R.RouteManually, [routing.RouteManuallyRequest(
            case_id=i, organ=HOLDER, mode=routing.HANDLING_MODE_ASSIGN, reason="by hand",
            request_id=f"man-{i}") for i in ids], "clerk", c))
    # Routed by hand as 交办 (assigned), the case owes a completion report once its holder has
    # accepted it and issued the written opinion (both untimed).
    try:
        for i in ids:
            wait_for("manual assignment", lambda: c.call(
                R.GetAssignment, routing.GetAssignmentRequest(case_id=i), "handler").state
                == routing.ASSIGNMENT_STATE_AWAITING_ACCEPTANCE, timeout=5)
            c.call(R.AcceptCase, routing.AcceptCaseRequest(case_id=i, request_id=f"acc2-{i}"),
                   "handler")
            c.call(R.SubmitReply, routing.SubmitReplyRequest(
                case_id=i, outcome=routing.REPLY_OUTCOME_SUPPORTED, text="registration ordered",
                legal_basis="《不动产登记暂行条例》", service=routing.ServiceRecord(
                    mode=routing.SERVICE_MODE_POST, served_at=ts(0), signed=True,
                    view=routing.PETITIONER_VIEW_AGREES), request_id=f"reply2-{i}"), "handler")
    except (TimeoutError, grpc.RpcError):
        pass  # SubmitCompletionReport will report what it gets
    record("SubmitCompletionReport", "routing", timed(
        R.SubmitCompletionReport, [routing.SubmitCompletionReportRequest(
            case_id=i, text="the developer has started the registration", request_id=f"rep-{i}")
            for i in ids], "handler", c))

    # ---- writes: supervision by hand, its acknowledgement, a leader's case
    ids = [r.case_id for r in misc]
    notices = []

    def issue_requests():
        for i in ids:
            yield supervision.IssueSupervisionRequest(
                case_id=i, text="report progress within five days",
                feedback_due=ts(-5 * 86400), request_id=f"sup-{i}")

    # Issue returns the Notice; keep each id for the acknowledgement (outside the timed call).
    res = timed(S.IssueSupervision, issue_requests(), "supervisor", c)
    record("IssueSupervision", "supervision", res)
    if res.status == "OK":
        notices = [n.notice_id for n in c.call(
            S.ListNotices, supervision.ListNoticesRequest(
                organ=HOLDER, only_unacknowledged=True, page_size=500), "handler").notices
            if n.case_id in set(ids)]
    record("AcknowledgeNotice", "supervision", timed(
        S.AcknowledgeNotice, [supervision.AcknowledgeNoticeRequest(
            notice_id=n, feedback="on-site inspection on Monday", request_id=f"ack-{n}")
            for n in notices], "handler", c) if notices else Result(status="no notices"))
    record("TakeCharge", "supervision", timed(
        S.TakeCharge, [supervision.TakeChargeRequest(
            case_id=i, plan="meet the developer and the petitioner", target_date=
            time.strftime("%Y-%m-%d", time.localtime(time.time() + 30 * 86400)),
            add_to_backlog=True, request_id=f"take-{i}") for i in ids], "leader", c))
    record("RecordProgress", "supervision", timed(
        S.RecordProgress, [supervision.RecordProgressRequest(
            case_id=i, note="met the developer", request_id=f"prog-{i}") for i in ids],
        "leader", c))
    return out


# --------------------------------------------------------------------------- load


class Load(threading.Thread):
    """Registers `rate` petitions per second on its own channel, on a fixed schedule (a slow
    answer does not lower the offered rate beyond the calls it delays)."""

    def __init__(self, addr, tokens, rate, first_n):
        super().__init__(daemon=True)
        self.channel = grpc.insecure_channel(addr)
        self.c = Clients(self.channel, tokens)
        self.rate = rate
        self.n = itertools.count(first_n)
        self.stop_evt = threading.Event()
        self.sent = self.failed = 0
        self.first_error = None

    def run(self):
        start = time.monotonic()
        for k in itertools.count():
            delay = start + k / self.rate - time.monotonic()
            if self.stop_evt.wait(max(0.0, delay)):
                break
            n = next(self.n)
            cat, loc = LOAD_MIX[n % len(LOAD_MIX)]
            try:
                self.c.call(self.c.intake.RegisterPetition, petition(n, cat, loc), "clerk")
            except grpc.RpcError as e:
                self.failed += 1
                self.first_error = self.first_error or f"{e.code().name}: {e.details()}"
            self.sent += 1

    def stop(self):
        self.stop_evt.set()
        self.join()
        self.channel.close()


# --------------------------------------------------------------------------- main


def table(rest, load):
    rows = ["| RPC | service | at rest p50 | at rest p99 | under load p50 | under load p99 | status |",
            "|---|---|---:|---:|---:|---:|---|"]
    for key in rest:
        name, service = key
        cells = []
        statuses = []
        for res in (rest[key], load.get(key, Result(status="not run"))):
            if res.status == "OK" and res.samples:
                cells += [f"{pct(res.samples, 0.50):.2f}", f"{pct(res.samples, 0.99):.2f}"]
            else:
                cells += ["–", "–"]
            statuses.append(res.status)
        # Messages name case numbers and times, so compare the codes only.
        codes = [st.split(":")[0] for st in statuses]
        if codes[0] == codes[1]:
            status = statuses[0]
        else:
            status = f"rest: {statuses[0]}; load: {statuses[1]}"
        rows.append(f"| {name} | {service} | " + " | ".join(cells) + f" | {status} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", required=True, help="path of the petition-suite binary")
    ap.add_argument("--calls", type=int, default=200, help="timed calls per RPC and phase")
    ap.add_argument("--load", type=float, default=50, help="background registrations/s")
    ap.add_argument("--known", type=int, default=20, help="cases the read RPCs cycle over")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="rpc-latency-")
    suite = None
    try:
        compile_protos(os.path.join(work, "gen"))
        suite = Suite(os.path.abspath(args.suite), work)
        tokens = {
            "clerk": suite.token(BUREAU, "clerk"),
            "supervisor": suite.token(BUREAU, "supervisor"),
            "leader": suite.token(BUREAU, "leader"),
            "handler": suite.token(HOLDER, "handler"),
            "reviewer": suite.token(REVIEWER, "handler"),
        }
        suite.wait_ready()
        print(f"suite {args.suite} on {suite.grpc_addr}", file=sys.stderr)

        channel = grpc.insecure_channel(suite.grpc_addr)
        c = Clients(channel, tokens)
        # A retrying call: ready on the admin port does not prove the gRPC port answers.
        wait_for("the gRPC port", lambda: c.call(
            c.intake.ListCases, intake.ListCasesRequest(page_size=1), "clerk") is not None)

        # Cases the read RPCs look at, registered and routed before anything is timed.
        reg = Registrar(c, first_n=1)
        known = reg.routed_cases(args.known)
        state = {"known": known,
                 "known_ids": [resident_id(n) for n in range(1, args.known + 1)]}
        # Warm the channel and the server's code paths once so the first timed call does not
        # pay for connection set-up.
        for r in known:
            c.call(c.intake.GetCase, intake.GetCaseRequest(case_id=r.case_id), "clerk")

        print("at rest:", file=sys.stderr)
        rest = run_phase(c, reg, args.calls, state)

        print(f"under load ({args.load:g} registrations/s):", file=sys.stderr)
        load = Load(suite.grpc_addr, tokens, args.load, first_n=5_000_000)
        load.start()
        time.sleep(1.0)  # let the load reach its rate before timing
        try:
            loaded = run_phase(c, reg, args.calls, state)
        finally:
            load.stop()
        channel.close()

        print(table(rest, loaded))
        print(f"\nsuite: `{os.path.basename(args.suite)}`; {args.calls} sequential calls per RPC "
              f"on one channel; background load: {load.sent} registrations sent at "
              f"{args.load:g}/s, {load.failed} failed"
              + (f" (first: {load.first_error})" if load.first_error else "") + ".")
    finally:
        if suite:
            suite.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
