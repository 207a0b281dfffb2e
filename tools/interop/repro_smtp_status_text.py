#!/usr/bin/python3
"""Reproduction (not registered with ctest; fails until model/ is fixed): SmtpException.Message
for a refused command differs from .NET for 421, 454, 530 and codes outside SmtpStatusCode.

.NET builds it as GetMessageForStatus(code) + " " + "The server response was: {0}" for every
code (dotnet/runtime System.Net.Mail SmtpException.cs, texts from Strings.resx), so
  421 → "Service not available, closing transmission channel. The server response was: …"
  454 → "Client does not have permission to submit mail to this server. The server response was: …"
  530 → "The SMTP server requires a secure connection or the client was not authenticated. The
         server response was: …"
  555 (default branch) → "Syntax error, command unrecognized. The server response was: …"
faultline's detail::smtp_status_text (model/include/faultline/model/smtp_client.h) gives
"Service not available, closing transmission channel.4.3.2 …" (no separator at all),
"The client was not authenticated. …", "The server requires a secure connection. …" and
"Failure sending mail. …". Seen first against smtp-sink -Q MAIL.
Method: faultline smtp-server answers MAIL with the code; send-mail prints the message.
Usage: repro_smtp_status_text.py FAULTLINE_CLI
"""

import os
import sys
import tempfile

from common import Checks, FaultlineServer, require_faultline, send_mail

faultline = require_faultline(sys.argv[1])
checks = Checks("repro: SmtpException message texts")
SUFFIX = " The server response was: "
CASES = [
    ("421 4.3.2 shutting down", "Service not available, closing transmission channel."),
    ("454 4.7.0 relay denied", "Client does not have permission to submit mail to this server."),
    ("530 5.7.0 Must issue a STARTTLS command first",
     "The SMTP server requires a secure connection or the client was not authenticated."),
    ("555 5.5.4 unsupported parameter", "Syntax error, command unrecognized."),
    ("550 5.1.0 sender rejected", "Mailbox unavailable."),  # already right: the control case
]
with tempfile.TemporaryDirectory(prefix="faultline-repro-") as work:
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
