"""Large list uploads are imported outside the request, by the scheduler process.

The upload request checks the file cheaply (:func:`receive`): its type, the header row and the
required columns, and whether the list ends within ``UPLOAD_INLINE_ROWS`` data rows and
``UPLOAD_INLINE_BYTES`` of XML or text. Such a list is imported there and then, as before. A
longer one is kept as a :class:`~models.ReferralUpload` with the status ``queued`` and the
file's bytes in ``payload``, and the bureau is shown the upload's page, which follows it.

The scheduler's ``process_uploads`` job (:func:`process_queue`, every few seconds) claims one
queued upload at a time (:func:`claim`: on PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED``, on
SQLite under the database's one write lock), reads it through once (every file-level check,
and the number of rows to show progress against), then imports it with the request's own code
as the user who uploaded it (the audit trail names them) and in the language they uploaded in;
the payload is then cleared and the uploader notified. A file-level problem found there (too
many rows, a corrupt part) marks the upload ``failed`` with the message and saves nothing;
uploading the same bytes again tries again. Progress is written after every chunk on
PostgreSQL, from a connection of its own; on SQLite, whose one writer is the import itself,
only before and after.

The process importing an upload holds a lock that dies with it
(:func:`advisors.dbutil.held_for_life`), taken before the upload shows ``running``. An upload
left ``running`` whose lock is free was cut off (the process was killed, the machine went
down): it goes back to the queue once, then fails; where the lock cannot be known (no
``flock``), an upload running for more than :data:`STALE_AFTER` is taken for cut off, and at
the scheduler's start every one.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from models import ReferralUpload, User, db, utcnow

from ..audit import acting_as
from ..dbutil import held_for_life, is_held, is_postgresql
from ..errors import ValidationFailed
from ..sheet_reader import MB, OverBudget
from .notifications import notify
from .referral_import import (
    _import,
    check_repeat,
    clean_filename,
    fingerprint,
    import_new,
    open_sheet,
)

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=10)  # without flock: an import takes seconds, not this
MAX_ATTEMPTS = 2  # an upload whose import was cut off goes back to the queue once
RUN_SECONDS = 60  # one run of the job takes queued uploads for about this long at most


def _limit() -> int:
    return int(current_app.config.get("MAX_UPLOAD_ROWS", 20000))


# ----------------------------------------------------------------------------- the request
def receive(actor: User, filename: str, data: bytes, *, locale: str | None) -> ReferralUpload:
    """An uploaded list, from the upload request: imported now when it is short (as
    :func:`~.referral_import.import_file`, whose repeat rule applies: ``repeat = True`` on an
    earlier upload of the same bytes), else queued (``status == "queued"``). Raises
    ValidationFailed (field ``file``) for a file whose start is already unusable. Flushes;
    the caller commits."""
    if actor.role != "bureau" or actor.org_id is None:
        raise ValidationFailed(_("Only bureau users can refer firms."))
    sha = fingerprint(data)
    existing = check_repeat(actor, sha)
    if existing is not None:
        return existing
    short, headers = _look(filename, data)
    if short:
        return import_new(actor, filename, data, sha)
    upload = ReferralUpload(
        org_id=actor.org_id,
        user_id=actor.id,
        filename=clean_filename(filename),
        sha256=sha,
        status="queued",
        payload=data,
        locale=locale,
        rows=0,
        progress=0,
        counts={},
        rejected=[],
        headers=headers,
    )
    db.session.add(upload)
    db.session.flush()
    upload.repeat = False
    return upload


def _look(filename: str, data: bytes) -> tuple[bool, list[str]]:
    """(whether the list is short enough to import in the request, its headers if read)."""
    config = current_app.config
    rows = int(config.get("UPLOAD_INLINE_ROWS", 500))
    budget = int(config.get("UPLOAD_INLINE_BYTES", 4 * MB))
    try:
        sheet = open_sheet(filename, data, _limit(), budget)
    except OverBudget:
        return False, []
    try:
        for n, _row in enumerate(sheet.rows, start=1):
            if n > rows:
                return False, sheet.headers
        return True, sheet.headers
    except OverBudget:
        return False, sheet.headers
    finally:
        sheet.close()


# ----------------------------------------------------------------------------- the job
def process_queue(seconds: float = RUN_SECONDS) -> int:
    """The scheduler's job: recover stale uploads, then import queued ones, oldest first,
    until none is left or ``seconds`` have passed. Returns how many it took."""
    recover()
    start, done = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        upload_id = claim()
        if upload_id is None:
            db.session.commit()
            break
        with held_for_life(lock_name(upload_id)):
            db.session.commit()  # "running" shows only once its lock is held
            process(upload_id)
        done += 1
    return done


def lock_name(upload_id: int) -> str:
    """The lock the process importing an upload holds (:func:`advisors.dbutil.held_for_life`)."""
    return f"referral_upload:{upload_id}"


def claim(now: datetime | None = None) -> int | None:
    """Mark the oldest queued upload ``running``, in the session's transaction (the caller
    takes the upload's lock, then commits); its id, or None. Two claimers never take the same
    one: on PostgreSQL the row is locked and skipped by the others, on SQLite the statement
    is a write and takes the database's one write lock."""
    now = now or utcnow()
    queued = select(ReferralUpload.id).where(ReferralUpload.status == "queued").limit(1)
    if db.session.scalar(queued) is None:  # the usual case: a read, no write lock taken
        return None
    oldest = (
        select(ReferralUpload.id)
        .where(ReferralUpload.status == "queued")
        .order_by(ReferralUpload.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    upload_id = db.session.execute(
        update(ReferralUpload)
        .where(ReferralUpload.id == oldest, ReferralUpload.status == "queued")
        .values(status="running", started_at=now, finished_at=None, progress=0, error=None)
        .returning(ReferralUpload.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if upload_id is not None:
        upload = _get(upload_id)
        upload.counts = {"attempts": int((upload.counts or {}).get("attempts", 0)) + 1}
        db.session.flush()
    return upload_id


def _get(upload_id: int) -> ReferralUpload | None:
    """The upload without its file and report (megabytes each)."""
    return db.session.get(
        ReferralUpload,
        upload_id,
        options=[defer(ReferralUpload.payload), defer(ReferralUpload.rejected)],
        populate_existing=True,
    )


def process(upload_id: int) -> None:
    """Import a claimed upload (see the module's description). Manages its own transactions;
    never raises for a problem of the file or of the import (the upload is failed instead)."""
    upload = _get(upload_id)
    data = db.session.scalar(select(ReferralUpload.payload).where(ReferralUpload.id == upload_id))
    user = db.session.get(User, upload.user_id)
    locale = upload.locale or current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN")
    filename, sha = upload.filename, upload.sha256
    with force_locale(locale), acting_as(user):
        try:
            if data is None:
                raise ValidationFailed(_("The file is no longer kept. Upload it again."))
            if user is None or not (
                user.active and user.role == "bureau" and user.org_id == upload.org_id
            ):
                raise ValidationFailed(
                    _("The user who uploaded this list can no longer refer firms for this bureau.")
                )
            upload.rows = _count_rows(filename, data)
            db.session.commit()
            _import(user, filename, data, sha, upload, _progress_writer(upload_id))
            upload.status = "done"
            upload.payload = None
            upload.progress = upload.rows
            upload.finished_at = utcnow()
            counts = upload.counts or {}
            notify(
                [user.id],
                "upload_done",
                params={
                    "file": upload.filename,
                    "upload_id": upload.id,
                    **{k: int(counts.get(k, 0)) for k in _COUNTS},
                },
            )
            db.session.commit()
            log.info("upload %s imported: %s", upload_id, counts)
        except ValidationFailed as exc:
            db.session.rollback()
            _fail(upload_id, (exc.fields or {}).get("file") or exc.message)
        except IntegrityError:
            db.session.rollback()
            _fail(
                upload_id,
                _(
                    "Someone changed the same firms at the same moment. Nothing was saved; "
                    "upload the file again."
                ),
            )
        except Exception:  # noqa: BLE001 - the upload is failed and the error logged
            db.session.rollback()
            log.exception("upload %s failed", upload_id)
            _fail(
                upload_id,
                _("The import stopped on an unexpected error. Nothing was saved; try again later."),
            )


_COUNTS = ("created", "merged", "duplicate", "rejected")


def _count_rows(filename: str, data: bytes) -> int:
    """The list's data rows, the whole file read through (every file-level check)."""
    sheet = open_sheet(filename, data, _limit())
    try:
        return sum(1 for _row in sheet.rows)
    finally:
        sheet.close()


def _progress_writer(upload_id: int):
    """PostgreSQL: a function writing the rows done so far, each time in a short transaction of
    its own (the import's transaction never writes the upload's row until its end, so this
    waits for nothing). SQLite: None (the import holds the one write lock)."""
    if not is_postgresql():
        return None
    table = ReferralUpload.__table__

    def write(rows: int) -> None:
        try:
            with db.engine.begin() as connection:
                connection.execute(
                    update(table).where(table.c.id == upload_id).values(progress=rows)
                )
        except Exception:  # noqa: BLE001 - progress is a courtesy: the import goes on
            log.warning("progress of upload %s not written", upload_id, exc_info=True)

    return write


def _fail(upload_id: int, message: str) -> None:
    upload = _get(upload_id)
    upload.status = "failed"
    upload.error = message[:1000]
    upload.payload = None
    upload.progress = 0
    upload.finished_at = utcnow()
    notify(
        [upload.user_id],
        "upload_failed",
        params={"file": upload.filename, "error": message[:200], "upload_id": upload.id},
    )
    db.session.commit()
    log.info("upload %s failed: %s", upload_id, message)


def recover(now: datetime | None = None, *, at_start: bool = False) -> int:
    """Uploads left ``running`` by a process that is gone: their lock is free (where that
    cannot be known: started more than :data:`STALE_AFTER` ago, or with ``at_start``, the
    scheduler process starting, every one). Back to the queue if they have not been tried
    :data:`MAX_ATTEMPTS` times, else failed. Commits; returns how many."""
    now = now or utcnow()
    running = db.session.execute(
        select(ReferralUpload.id, ReferralUpload.started_at, ReferralUpload.payload.is_not(None))
        .where(ReferralUpload.status == "running")
        .order_by(ReferralUpload.id)
    ).all()
    db.session.rollback()  # the checks below must not wait on a transaction of ours
    stale = []
    for upload_id, started_at, has_file in running:
        held = is_held(lock_name(upload_id))
        if held is False or (held is None and (at_start or started_at < now - STALE_AFTER)):
            stale.append((upload_id, has_file))
    recovered = 0
    for upload_id, has_file in stale:
        upload = _get(upload_id)
        if upload.status != "running":  # it finished meanwhile
            db.session.rollback()
            continue
        recovered += 1
        attempts = int((upload.counts or {}).get("attempts", 1))
        if has_file and attempts < MAX_ATTEMPTS:
            upload.status = "queued"
            upload.started_at = None
            upload.progress = 0
            db.session.commit()
            log.warning("upload %s was cut off: queued again", upload_id)
            continue
        with force_locale(upload.locale or current_app.config.get("BABEL_DEFAULT_LOCALE")):
            message = _(
                "The import was cut off (the server stopped) and could not be finished. "
                "Nothing was saved; upload the file again."
            )
        _fail(upload_id, message)
    return recovered
