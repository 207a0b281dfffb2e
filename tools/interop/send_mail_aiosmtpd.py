#!/usr/bin/python3
"""Goal: faultline's SmtpClient (`faultline send-mail`) against aiosmtpd, an independent SMTP
server: the exact message bytes it receives (envelope order M-13, header and body encodings
M-29/M-30, dot-stuffing undone M-28/W-6, the empty line before the terminator M-27), and the
outcome for scripted replies (one RCPT refused M-16, all refused M-17, 554 and 451 after the dot
M-26).
Method: aiosmtpd's Controller runs in this process on 127.0.0.1 and a port bound beforehand
(port 0); a scripted handler records every message and answers as each case sets it.
Usage: send_mail_aiosmtpd.py FAULTLINE_CLI
"""

import base64
import re
import socket
import sys

from common import Checks, require_faultline, require_python_module, send_mail

require_python_module("aiosmtpd")

from aiosmtpd.controller import Controller  # noqa: E402  (after the skip check)

faultline = require_faultline(sys.argv[1])
checks = Checks("interop send-mail vs aiosmtpd")


class ScriptedHandler:
    """Accepts everything unless told otherwise; records (mail_from, rcpt_tos, content)."""

    def __init__(self):
        self.recipient_replies = {}
        self.data_reply = None
        self.messages = []

    def reset(self, recipient_replies=None, data_reply=None):
        self.recipient_replies = recipient_replies or {}
        self.data_reply = data_reply
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.recipient_replies:
            return self.recipient_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.original_content))
        return self.data_reply or "250 2.0.0 Message accepted"


class EphemeralController(Controller):
    """A Controller on a socket bound to 127.0.0.1:0 before the server starts, so the port is
    never guessed (Controller itself needs a fixed port)."""

    def _create_server(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        return self.loop.create_server(self._factory_invoker, sock=listener,
                                       ssl=self.ssl_context)


def mask_date(content):
    return re.sub(rb"\r\nDate: [^\r\n]*\r\n", b"\r\nDate: <date>\r\n", content, count=1)


def base64_lines(data):
    encoded = base64.b64encode(data)
    return b"".join(encoded[i:i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


handler = ScriptedHandler()
controller = EphemeralController(handler, hostname="127.0.0.1", ready_timeout=10)
controller.start()
try:
    port = controller.port
    ENVELOPE = ["--from", "a@example.test", "--to", "b@example.test", "--to", "c@example.test",
                "--cc", "d@example.test", "--bcc", "e@example.test"]

    # 1. Non-ASCII body with lines starting with "." → UTF-8, base64 (M-29), so no dot reaches
    #    the wire unencoded; the subject is a B-encoded word (M-30); Bcc only in the envelope.
    body = ("Hello from faultline.\r\n.one leading dot\r\n..two leading dots\r\n.\r\n"
            "Grüße aus Köln ←→\r\nlast line").encode("utf-8")
    subject = "Grüße ←"
    handler.reset()
    status, outcome, raw = send_mail(faultline, port, *ENVELOPE, "--subject", subject, body=body)
    checks.check("UTF-8 message: delivered",
                 status == 0 and outcome and outcome.get("delivery") == "delivered", raw)
    expected = (b"MIME-Version: 1.0\r\n"
                b"From: a@example.test\r\n"
                b"To: b@example.test, c@example.test\r\n"
                b"Cc: d@example.test\r\n"
                b"Date: <date>\r\n"
                b"Subject: =?utf-8?B?" + base64.b64encode(subject.encode("utf-8")) + b"?=\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n"
                b"Content-Transfer-Encoding: base64\r\n"
                b"\r\n" + base64_lines(body) + b"\r\n")
    got = handler.messages[0] if len(handler.messages) == 1 else (None, None, b"")
    checks.check("UTF-8 message: envelope MAIL FROM, then To, Cc, Bcc in order (M-13)",
                 got[0] == "a@example.test" and got[1] == ["b@example.test", "c@example.test",
                                                           "d@example.test", "e@example.test"],
                 f"messages: {handler.messages!r}")
    checks.check("UTF-8 message: exact bytes (Date masked); body decodes to the original",
                 mask_date(got[2]) == expected, f"got:\n{got[2]!r}\nexpected:\n{expected!r}")

    # 2. ASCII body with lines starting with "." and a lone "." line → quoted-printable, the dots
    #    stuffed on the wire (M-28) and unstuffed by aiosmtpd: the content is the body, then the
    #    writer's CRLF and the empty line before the terminator (M-27).
    body = b"Hello.\r\n.one leading dot\r\n..two leading dots\r\n.\r\nend"
    handler.reset()
    status, outcome, raw = send_mail(faultline, port, "--from", "a@example.test", "--to",
                                     "b@example.test", "--subject", "dots", body=body)
    expected = (b"MIME-Version: 1.0\r\n"
                b"From: a@example.test\r\n"
                b"To: b@example.test\r\n"
                b"Date: <date>\r\n"
                b"Subject: dots\r\n"
                b"Content-Type: text/plain; charset=us-ascii\r\n"
                b"Content-Transfer-Encoding: quoted-printable\r\n"
                b"\r\n" + body + b"\r\n\r\n")
    got = handler.messages[0][2] if len(handler.messages) == 1 else b""
    checks.check("ASCII message with leading dots: delivered, exact bytes after unstuffing",
                 status == 0 and outcome.get("delivery") == "delivered"
                 and mask_date(got) == expected, f"{raw}\ngot:\n{got!r}\nexpected:\n{expected!r}")

    # 3. M-16: one of two recipients refused → DATA still sent, the other gets the message,
    #    SmtpFailedRecipientException for the refused one, delivery delivered.
    handler.reset(recipient_replies={"c@example.test": "550 5.1.1 <c@example.test>: unknown"})
    status, outcome, raw = send_mail(faultline, port, "--from", "a@example.test", "--to",
                                     "b@example.test", "--to", "c@example.test", "--subject",
                                     "one refused", body=b"hi\r\n")
    error = (outcome or {}).get("error") or {}
    checks.check("RCPT 550 for one of two: SmtpFailedRecipientException, delivered to the other",
                 status == 1 and error.get("type") == "SmtpFailedRecipientException"
                 and error.get("status_code") == 550
                 and outcome.get("failed_recipients") == [{"recipient": "<c@example.test>",
                                                           "status_code": 550}]
                 and outcome.get("delivery") == "delivered"
                 and [m[1] for m in handler.messages] == [["b@example.test"]],
                 f"{raw}\nmessages: {handler.messages!r}")

    # 4. M-17: both refused (452 and 553) → no DATA, SmtpFailedRecipientsException.
    handler.reset(recipient_replies={"b@example.test": "452 4.2.2 mailbox full",
                                     "c@example.test": "553 5.1.3 bad address"})
    status, outcome, raw = send_mail(faultline, port, "--from", "a@example.test", "--to",
                                     "b@example.test", "--to", "c@example.test", "--subject",
                                     "all refused", body=b"hi\r\n")
    error = (outcome or {}).get("error") or {}
    checks.check("RCPT 452 and 553: SmtpFailedRecipientsException, no message sent",
                 status == 1 and error.get("type") == "SmtpFailedRecipientsException"
                 and outcome.get("failed_recipients") == [
                     {"recipient": "<b@example.test>", "status_code": 452},
                     {"recipient": "<c@example.test>", "status_code": 553}]
                 and outcome.get("delivery") == "not_delivered" and handler.messages == [],
                 f"{raw}\nmessages: {handler.messages!r}")

    # 5. M-26: a refusal after the dot is SmtpException(code), not delivered (the data was read).
    for reply, code, text in (("554 5.7.1 Message refused", 554, "Transaction failed."),
                              ("451 4.3.0 Try again later", 451, "Error in processing.")):
        handler.reset(data_reply=reply)
        status, outcome, raw = send_mail(faultline, port, "--from", "a@example.test", "--to",
                                         "b@example.test", "--subject", "refused", body=b"hi\r\n")
        error = (outcome or {}).get("error") or {}
        checks.check(f"{code} after the dot: SmtpException {code}, not delivered",
                     status == 1 and error.get("type") == "SmtpException"
                     and error.get("status_code") == code
                     and error.get("message") == f"{text} The server response was: {reply[4:]}"
                     and outcome.get("delivery") == "not_delivered"
                     and len(handler.messages) == 1, raw)
finally:
    controller.stop()

checks.finish()
