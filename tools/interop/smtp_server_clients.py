#!/usr/bin/python3
"""Goal: faultline's scriptable server (`faultline smtp-server`) against real mail clients —
swaks, curl, msmtp and Python smtplib each deliver one message whose envelope and content the
server records exactly (dot-stuffing undone, W-6), and Postfix's smtp-source sends three messages
on one connection after HELO — and against SMTP smuggling payloads (W-12):
curl without --crlf (bare-LF lines, "\\n.\\n") and swaks --no-data-fixup ("\\n.\\r\\n",
"\\r\\n.\\n"). Under the bare_line_feed policies reject (550 after the data, W-16) and normalize
the data must not end early: one transaction, no smuggled MAIL. legacy_accept is vulnerable on
purpose (W-13) and serves as the positive control: there the same payload must smuggle.
Method: one server per client or payload on 127.0.0.1:0 (--max-sessions 1), the client run to
completion, then the session record (session-1.json and the .eml files) checked.
Usage: smtp_server_clients.py FAULTLINE_CLI
"""

import itertools
import os
import smtplib
import sys
import tempfile

from common import Checks, FaultlineServer, require, require_faultline, run

faultline = require_faultline(sys.argv[1])
swaks, curl, msmtp, smtp_source = require("swaks", "curl", "msmtp", "/usr/sbin/smtp-source")
checks = Checks("interop smtp-server vs clients")
work = tempfile.TemporaryDirectory(prefix="faultline-interop-")


def message(client):
    """The message each client sends, CRLF line ends, with lines that need dot-stuffing."""
    return (f"From: a@example.test\r\nTo: b@example.test, c@example.test\r\n"
            f"Subject: interop {client}\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{client}@example.test>\r\n\r\n"
            f"Hello from {client}.\r\n.one leading dot\r\n..two leading dots\r\n.\r\n"
            f"last line\r\n").encode("ascii")


def write(name, data):
    path = f"{work.name}/{name}"
    with open(path, "wb") as out:
        out.write(data)
    return path


server_numbers = itertools.count(1)


def serve(script=None):
    """A fresh server for one client session, recording into its own folder."""
    directory = f"{work.name}/server-{next(server_numbers)}"
    os.makedirs(directory)
    return FaultlineServer(faultline, script or {}, directory)


def check_delivery(client, server, client_result, helo, content):
    """One session, one transaction from a@ to b@ and c@, 250 after the data, exact content."""
    status = server.finish()
    session = server.session() or {}
    transactions = session.get("transactions", [])
    envelope_ok = (len(transactions) == 1
                   and transactions[0].get("mail_from") == "a@example.test"
                   and transactions[0].get("recipients") == [
                       {"address": "b@example.test", "reply_code": 250},
                       {"address": "c@example.test", "reply_code": 250}]
                   and transactions[0].get("data_complete") is True
                   and transactions[0].get("final_reply_code") == 250)
    commands = session.get("commands", [])
    detail = (f"client: {client_result}\nserver exit {status}: {server.output!r}\n"
              f"session: {session}")
    checks.check(f"{client}: exits 0, one session, envelope a@ -> b@, c@, 250 after the data",
                 client_result == 0 and status == 0 and envelope_ok
                 and bool(commands) and commands[0].upper() == f"EHLO {helo}".upper(), detail)
    got = server.message()
    checks.check(f"{client}: recorded content is the message, dot-stuffing undone",
                 got == content, f"got:\n{got!r}\nexpected:\n{content!r}")


# ---- one message from each client --------------------------------------------------------------

with serve() as server:
    data = message("swaks")
    result = run([swaks, "--server", f"127.0.0.1:{server.port}", "--from", "a@example.test",
                  "--to", "b@example.test,c@example.test", "--helo", "swaks.test",
                  "--data", write("swaks.eml", data), "--timeout", "10s"], timeout_s=20)
    # swaks sends its own CRLF "." CRLF after data that already ends in CRLF: one empty line more.
    check_delivery("swaks", server, result.returncode, "swaks.test", data + b"\r\n")

with serve() as server:
    # --crlf turns every LF into CRLF (even one after a CR), so curl gets the LF form.
    data = message("curl")
    result = run([curl, "-sS", "--max-time", "10", f"smtp://127.0.0.1:{server.port}/curl.test",
                  "--mail-from", "a@example.test", "--mail-rcpt", "b@example.test",
                  "--mail-rcpt", "c@example.test", "--crlf", "-T",
                  write("curl.eml", data.replace(b"\r\n", b"\n"))],
                 timeout_s=20)
    check_delivery("curl --crlf", server, result.returncode, "curl.test", data)

with serve() as server:
    data = message("msmtp")
    with open(write("msmtp.eml", data), "rb") as stdin:
        result = run([msmtp, "--file=/dev/null", "--host=127.0.0.1", f"--port={server.port}",
                      "--from=a@example.test", "--domain=msmtp.test", "--auth=off", "--tls=off",
                      "--timeout=10", "b@example.test", "c@example.test"], stdin=stdin,
                     timeout_s=20)
    check_delivery("msmtp", server, result.returncode, "msmtp.test", data)

with serve() as server:
    data = message("smtplib")
    try:
        with smtplib.SMTP("127.0.0.1", server.port, local_hostname="python.test",
                          timeout=10) as client:
            refused = client.sendmail("a@example.test", ["b@example.test", "c@example.test"], data)
        outcome = 0 if refused == {} else f"refused {refused}"
    except (smtplib.SMTPException, OSError) as error:
        outcome = repr(error)
    check_delivery("python smtplib", server, outcome, "python.test", data)

# smtp-source (Postfix): HELO, then three transactions on one connection (-d), then QUIT.
with serve() as server:
    result = run([smtp_source, "-d", "-m", "3", "-l", "200", "-f", "a@example.test", "-t",
                  "b@example.test", "-M", "source.test", "-S", "interop smtp-source",
                  f"127.0.0.1:{server.port}"], timeout_s=20)
    status = server.finish()
    session = server.session() or {}
    transactions = session.get("transactions", [])
    messages = [server.message(1, number) or b"" for number in (1, 2, 3)]
    checks.check("smtp-source -d -m 3: HELO, three transactions on one connection, each 250",
                 result.returncode == 0 and status == 0
                 and session.get("commands", [None])[0] == "HELO source.test"
                 and session.get("commands", [None])[-1] == "QUIT"
                 and [(t.get("mail_from"), t.get("recipients"), t.get("final_reply_code"))
                      for t in transactions]
                 == [("a@example.test", [{"address": "b@example.test", "reply_code": 250}], 250)]
                 * 3
                 and all(m.startswith(b"From: <a@example.test>\r\n")
                         and b"\r\nSubject: interop smtp-source\r\n\r\n" in m
                         for m in messages),
                 f"smtp-source exit {result.returncode} {result.stderr!r}\nsession: {session}")

# ---- smuggling payloads --------------------------------------------------------------------------

SMUGGLED = ("MAIL FROM:<evil@example.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n"
            "From: ceo@example.test\r\n\r\nsmuggled\r\n")


def smuggling_result(server):
    status = server.finish()
    session = server.session() or {}
    transactions = session.get("transactions", [])
    commands = session.get("commands", [])
    smuggled = any("evil@example.test" in command for command in commands) or any(
        t.get("mail_from") == "evil@example.test" for t in transactions)
    return status, session, transactions, smuggled


def check_policies(name, send):
    """Runs `send(port)` against one server per policy and checks what each policy must do."""
    for policy, final_code in (("reject", 550), ("normalize", 250)):
        with serve({"bare_line_feed": policy}) as server:
            client = send(server.port)
            status, session, transactions, smuggled = smuggling_result(server)
            content = server.message() or b""
            checks.check(
                f"{name}, {policy}: one transaction, data not ended early, no smuggled MAIL, "
                f"{final_code} after the data",
                status == 0 and len(transactions) == 1 and not smuggled
                and transactions[0].get("mail_from") == "a@example.test"
                and transactions[0].get("data_complete") is True
                and transactions[0].get("final_reply_code") == final_code
                and b"MAIL FROM:<evil@example.test>" in content,
                f"client: {client}\nsession: {session}\ncontent: {content!r}")
    with serve({"bare_line_feed": "legacy_accept"}) as server:
        client = send(server.port)
        status, session, transactions, smuggled = smuggling_result(server)
        checks.check(f"{name}, legacy_accept (vulnerable on purpose): the payload does smuggle",
                     status == 0 and len(transactions) == 2 and smuggled
                     and transactions[1].get("mail_from") == "evil@example.test",
                     f"client: {client}\nsession: {session}")


# curl without --crlf sends the file's bare LFs verbatim and stuffs no dots after them (P-9).
curl_payload = write("curl-smuggle.eml", (
    "From: a@example.test\nTo: b@example.test\nSubject: smuggle\n\nfirst part\n.\n"
    + SMUGGLED.replace("\r\n", "\n") + ".\n").encode("ascii"))


def send_curl(port):
    result = run([curl, "-sS", "--max-time", "10", f"smtp://127.0.0.1:{port}/curl.test",
                  "--mail-from", "a@example.test", "--mail-rcpt", "b@example.test",
                  "-T", curl_payload], timeout_s=20)
    return f"curl exit {result.returncode} {result.stderr!r}"


check_policies('curl without --crlf, "\\n.\\n"', send_curl)

# swaks --no-data-fixup sends the data exactly as given; the real terminator is ours.
for number, (label, separator) in enumerate((('"\\n.\\r\\n"', "\n.\r\n"),
                                             ('"\\r\\n.\\n"', "\r\n.\n"))):
    payload = write(f"swaks-smuggle-{number}.eml", (
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: smuggle\r\n\r\nfirst part"
        + separator + SMUGGLED + "\r\n.\r\n").encode("ascii"))

    def send_swaks(port, payload=payload):
        result = run([swaks, "--server", f"127.0.0.1:{port}", "--from", "a@example.test",
                      "--to", "b@example.test", "--helo", "swaks.test", "--no-data-fixup",
                      "--data", payload, "--timeout", "10s"], timeout_s=20)
        return f"swaks exit {result.returncode}"

    check_policies(f"swaks --no-data-fixup, {label}", send_swaks)

work.cleanup()
checks.finish()
