"""The local SMTP sink: a real SMTP server (aiosmtpd) that keeps every mail it is sent.

Tests run it inside their own process (:class:`vcs_tools.devstack.SmtpSink`) and
read the mails from memory. ``vcs run`` runs it as a process of its own
(``python -m vcs_tools.mailsink --port P --folder F``), so the supervisor can
restart it, and a soak test kill it, like any other part of the system. Each
mail becomes one ``.eml`` file, readable by its owner only: it holds a passcode.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from vcs_tools.private_files import create_binary, private_dir

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


class KeepMail:
    """aiosmtpd handler: keeps each received mail in memory and, optionally, as a file.

    A test makes it refuse like a real relay: ``refusal`` (an SMTP reply such as
    ``"550 5.1.1 no such mailbox"`` or ``"451 4.3.0 try later"``) answers every recipient
    while it is set, so nothing is accepted.
    """

    def __init__(self, folder: Path | None) -> None:
        self.received: list[bytes] = []
        """Every mail as it came (appended by the server's thread)."""
        self._parsed: list[EmailMessage] = []
        self.folder = private_dir(folder) if folder is not None else None
        self.refusal: str | None = None
        self.refused = 0

    @property
    def messages(self) -> list[EmailMessage]:
        """Every mail received so far, parsed when first asked for. Parsing with the standard
        library's header registry costs about 2 ms of CPU a mail: the benchmark, which runs
        this sink in its own process beside the load client and reads no mail, spent 2-3 CPU-s
        of a 928-office burst on it, on the cores the services share (a relay does not)."""
        for raw in self.received[len(self._parsed) :]:
            self._parsed.append(message_from_bytes(raw, policy=policy.default))
        return self._parsed

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refusal is not None:
            self.refused += 1
            return self.refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        self.received.append(raw)
        if self.folder is not None:
            with create_binary(self.folder / f"{time.time_ns()}.eml") as file:
                file.write(raw)
        return "250 Message accepted for delivery"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vcs_tools.mailsink", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True, help="where the .eml files go")
    args = parser.parse_args(argv)
    # Blocked before the server's thread starts (it inherits the mask), awaited below.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    controller = Controller(KeepMail(args.folder), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"mail sink on 127.0.0.1:{args.port}, mails in {args.folder}", flush=True)
    received = signal.sigwait(STOP_SIGNALS)
    print(f"mail sink stopping ({signal.Signals(received).name})", flush=True)
    controller.stop()


if __name__ == "__main__":
    main()
