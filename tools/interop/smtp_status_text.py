#!/usr/bin/python3
"""SmtpException.Message for a refused command, as .NET builds it: the fixed text for the status
code, a space, then "The server response was: " and the reply text (dotnet/runtime System.Net.Mail
SmtpException.GetMessageForStatus), for every code, including codes SmtpStatusCode does not name
(.NET's fallback text). Found against smtp-sink -Q MAIL, where 421 came out without a separator.
Method: faultline smtp-server answers MAIL with the code; send-mail prints the message.
Usage: smtp_status_text.py FAULTLINE_CLI
"""

import os
import sys
import tempfile

from common import Checks, FaultlineServer, require_faultline, send_mail

faultline = require_faultline(sys.argv[1])
checks = Checks("SmtpException message texts")
SUFFIX = " The server response was: "
CASES = [
    ("421 4.3.2 shutting down", "Service not available, closing transmission channel."),
    ("454 4.7.0 relay denied", "Client does not have permission to submit mail to this server."),
    ("530 5.7.0 Must issue a STARTTLS command first",
     "The SMTP server requires a secure connection or the client was not authenticated."),
    ("555 5.5.4 unsupported parameter", "Syntax error, command unrecognized."),
    ("550 5.1.0 sender rejected", "Mailbox unavailable."),
]
with tempfile.TemporaryDirectory(prefix="faultline-status-") as work:
    for number, (reply, text) in enumerate(CASES):
        directory = f"{work}/{number}"
        os.makedirs(directory)
        with FaultlineServer(faultline, {"steps": {"MAIL": {"reply": [reply]}}},
                             directory) as server:
            _, outcome, raw = send_mail(faultline, server.port, "--from", "a@example.test",
                                        "--to", "b@example.test")
            server.finish()
        expected = text + SUFFIX + reply[4:]
        message = ((outcome or {}).get("error") or {}).get("message")
        checks.check(f"MAIL {reply[:3]}: {expected!r}", message == expected,
                     f"got {message!r}\n{raw}")
checks.finish()
