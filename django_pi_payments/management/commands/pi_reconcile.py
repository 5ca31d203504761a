"""``manage.py pi_reconcile``: bring every incomplete payment to a final state, from cron."""

from __future__ import annotations

import json
import signal
import threading
from argparse import ArgumentParser, BooleanOptionalAction
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from types import FrameType
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections

from ...exceptions import PiError
from ...http import POOL_SIZE
from ...reconcile import NOT_TRIED, Outcome, ReconcileBusy, Report, reconcile
from ...services.core import db_alias

# Show progress on a terminal only when more than this many payments are due.
PROGRESS_THRESHOLD = 20
# The longest --older-than (ten years): a longer one puts the cutoff before the first datetime.
MAX_OLDER_THAN = 10 * 365 * 24 * 60
# The signals that stop a run: Ctrl-C, and SIGTERM (systemd stopping the unit, timeout(1)). The
# exit status of a run they stop is 128 + the signal, as a shell reports one: 130 and 143.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
INTERRUPTED = 128 + signal.SIGINT
# Payments handled at once by default, on a database with SELECT … FOR UPDATE SKIP LOCKED.
DEFAULT_WORKERS = 4


class StopSignal:
    """The signal handler of a run: the first Ctrl-C (SIGINT) or SIGTERM stops it, and any more
    signals change nothing (by default SIGTERM would kill the run at once, half-way through
    payments, unreported).

    Until the first payment is reported (:attr:`armed`), the first signal raises
    ``KeyboardInterrupt``: it cuts short the reading of Pi's incomplete list (which may wait for
    every timeout), and ``reconcile()`` lets the payments already running finish and reports
    them. From then on it only sets :attr:`event`, so that it can never land in the middle of
    the report: the run starts no more payments, finishes those running and reports them.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.armed = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        self.event.set()
        if first and not self.armed:
            raise KeyboardInterrupt

    @property
    def returncode(self) -> int:
        """The exit status of the stopped run: a shell's for the signal."""
        return 128 + (self.signum or signal.SIGINT)


@contextmanager
def stopping_on_signals(handler: StopSignal) -> Iterator[None]:
    """Within, SIGINT and SIGTERM go to ``handler`` (in the main thread only: elsewhere Python
    cannot install a handler, and the defaults stay). A signal the parent process told it to
    ignore (a background job's SIGINT) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, handler)
        for signum in STOP_SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for signum, restored in previous.items():
            signal.signal(signum, restored)


def default_workers() -> int:
    """:data:`DEFAULT_WORKERS`, or 1 on a database without ``SKIP LOCKED`` (SQLite): there the
    workers take turns at the database's one write lock across their Pi calls, so more settle
    nothing sooner, and SQLite gives a freed lock to whoever asks first, not to the longest
    waiter: a worker could wait out the database's timeout and fail its payment."""
    if connections[db_alias()].features.has_select_for_update_skip_locked:
        return DEFAULT_WORKERS
    return 1


class Command(BaseCommand):
    """Reconcile Pi's incomplete payments and the local ones stuck in a non-final status."""

    help = (
        "Complete, mark or cancel every incomplete Pi payment. Exit status: 0 when every "
        "payment was settled or is waiting (or another run holds the SQLite lock); 1 when a "
        "payment failed or was not tried (pass --no-fail-on-error to exit 0 then), or Pi's "
        "incomplete list or the database could not be read; 2 on a usage error; 130 when "
        "interrupted (Ctrl-C), 143 when stopped by SIGTERM."
    )

    from_command_line = False

    def run_from_argv(self, argv: list[str]) -> None:
        """Remember that we run from the command line: failures then set the exit status."""
        self.from_command_line = True
        super().run_from_argv(argv)

    def add_arguments(self, parser: CommandParser | ArgumentParser) -> None:
        """The options of DESIGN.md §7."""
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be done; make no state-changing call to Pi or the database.",
        )
        parser.add_argument(
            "--older-than",
            type=int,
            default=10,
            metavar="MINUTES",
            help="Local payments count as stuck after this many minutes without change "
            "(default 10).",
        )
        parser.add_argument(
            "--cancel-unpaid",
            action="store_true",
            help="Cancel approved payments that have no transaction after --older-than.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            metavar="N",
            help=f"Payments handled in parallel (default {DEFAULT_WORKERS}, or 1 on SQLite; "
            f"at most {POOL_SIZE}).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document instead of a summary."
        )
        parser.add_argument(
            "--fail-on-error",
            action=BooleanOptionalAction,
            default=None,
            help="Exit with status 1 when any payment failed (default: on from the command "
            "line, off under call_command).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the reconciliation and report it."""
        if not 0 <= options["older_than"] <= MAX_OLDER_THAN:
            raise CommandError(
                f"--older-than must be from 0 to {MAX_OLDER_THAN} minutes.", returncode=2
            )
        workers = options["workers"]
        if workers is not None and not 1 <= workers <= POOL_SIZE:
            raise CommandError(f"--workers must be from 1 to {POOL_SIZE}.", returncode=2)
        fail_on_error = options["fail_on_error"]
        if fail_on_error is None:
            fail_on_error = self.from_command_line
        self.handled: list[Outcome] = []
        self.show_progress = (
            self.stderr.isatty() and not options["json"] and options["verbosity"] > 0
        )
        self.stop = StopSignal()
        # The handlers stay until the report is printed: a later signal cannot cut it short.
        with stopping_on_signals(self.stop) if self.from_command_line else nullcontext():
            self._run(options, workers or default_workers(), fail_on_error)

    def _run(self, options: dict[str, Any], workers: int, fail_on_error: bool) -> None:
        stop = self.stop
        try:
            report = reconcile(
                older_than=timedelta(minutes=options["older_than"]),
                cancel_unpaid=options["cancel_unpaid"],
                dry_run=options["dry_run"],
                workers=workers,
                progress=self._progress,
                stop=stop.event,
            )
        except KeyboardInterrupt:
            self._end_progress()
            self._report(Report(dry_run=options["dry_run"], outcomes=self.handled), options)
            if not self.from_command_line:
                raise
            self._stopped(stop.returncode)
        except ReconcileBusy as exc:
            self.stderr.write(f"pi_reconcile: {exc}; nothing done.")
            if options["json"]:  # the one document --json promises: an empty report
                self._report(Report(dry_run=options["dry_run"]), options)
            return
        except PiError as exc:
            raise CommandError(f"Could not read Pi's incomplete payments: {exc}") from None
        except DatabaseError as exc:
            raise CommandError(f"The database could not be read: {exc}".strip()) from None
        self._end_progress()
        self._report(report, options)
        if stop.signum is not None:
            self._stopped(stop.returncode)
        if report.failed and fail_on_error:
            counts = report.counts
            not_tried = f" and {counts[NOT_TRIED]} not tried" if NOT_TRIED in counts else ""
            raise CommandError(
                f"{counts['failed']} payment(s) failed{not_tried}; see the output above.",
                returncode=1,
            )

    def _stopped(self, returncode: int) -> NoReturn:
        """End a run stopped by a signal (its report printed) with status ``returncode``."""
        reason = "Interrupted" if returncode == INTERRUPTED else "Terminated (SIGTERM)"
        raise CommandError(
            f"{reason}: the payments in progress were finished first; the others are left as "
            "they were for the next run.",
            returncode=returncode,
        )

    def _progress(self, outcome: Outcome) -> None:
        self.stop.armed = True  # a payment is reported: a signal no longer raises
        self.handled.append(outcome)
        if self.show_progress and len(self.handled) >= PROGRESS_THRESHOLD:
            self.stderr.write(f"\rreconciled {len(self.handled)} payments…", ending="")
            self.stderr.flush()

    def _end_progress(self) -> None:
        if self.show_progress and len(self.handled) >= PROGRESS_THRESHOLD:
            self.stderr.write("")

    def _report(self, report: Report, options: dict[str, Any]) -> None:
        """Print ``report``; stdout is flushed before each error line and at the end, so that a
        log file (cron's ``>> file 2>&1``, where stdout is block-buffered) keeps the order."""
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2))
            self.stdout.flush()
            return
        verbosity = options["verbosity"]
        for outcome in report.outcomes:
            if outcome.action == NOT_TRIED:
                continue
            if outcome.failed:
                self._error(
                    f"{outcome.identifier}: failed ({outcome.before} -> {outcome.after}): "
                    f"{outcome.error}"
                )
            elif verbosity >= 2 or (verbosity >= 1 and outcome.before != outcome.after):
                self.stdout.write(
                    f"{outcome.identifier}: {outcome.action} ({outcome.before} -> {outcome.after})"
                )
        counts = report.counts
        not_tried = counts.get(NOT_TRIED, 0)
        if not_tried:
            self._error(
                f"{not_tried} payment(s) not tried: Pi Network or Horizon is unreachable; "
                "the next run retries them."
            )
        if verbosity >= 1:
            summary = ", ".join(f"{key} {value}" for key, value in counts.items())
            prefix = "dry run: " if report.dry_run else ""
            style = self.style.ERROR if report.failed else self.style.SUCCESS
            self.stdout.write(style(f"{prefix}{summary}"))
        self.stdout.flush()

    def _error(self, line: str) -> None:
        self.stdout.flush()
        self.stderr.write(self.style.ERROR(line))
