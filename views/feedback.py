"""Firm feedback without an account: one-time links (and QR codes) and the public rating page.

Staff side (admin, finance office, the assigned advisor, the referring bureaus): a case's links
and their status, a new link (shown once, with its QR code, on ``PUBLIC_BASE_URL``), revoking a
link. Public side: the rating page the link opens, with no sign-in: the firm's name, 1-5 and a
comment, nothing else of the case. An unknown or altered token is the ordinary 404; an expired,
used or revoked link a 410 that says so.
The rules live in :mod:`advisors.services.feedback`.
"""

from __future__ import annotations

import base64
import io

import segno
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice

from advisors.errors import Conflict, NotFound, ValidationFailed
from advisors.labels import labels
from advisors.params import MAX_ID
from advisors.permissions import PUBLIC, allow, allow_blueprint
from advisors.services import feedback as svc
from advisors.services import saving

from ._forms import apply_errors
from ._http import form_view

bp = Blueprint("feedback", __name__, url_prefix="/feedback")
# The roles of svc.CREATOR_ROLES; each sees only the cases in its scope (another's is a 404).
allow_blueprint(bp, "admin", "finance_office", "advisor", "bureau")

# Pages that carry a token (in the URL or in the body): never cached, never sent as a referrer.
_TOKEN_PAGES = {"feedback.rate", "feedback.thanks", "feedback.create"}


class RatingForm(FlaskForm):
    # The service checks the value (and names the field); the form keeps what was sent.
    rating = RadioField(
        _l("Your rating"),
        choices=[SelectChoice(str(n), str(n)) for n in range(1, 6)],
        validate_choice=False,
    )
    comment = TextAreaField(
        _l("Comment (optional)"), render_kw={"rows": 4, "maxlength": svc.COMMENT_MAX}
    )


@bp.after_request
def _no_leak(response):
    if request.endpoint in _TOKEN_PAGES:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _me():
    return current_user._get_current_object()


# ------------------------------------------------------------------ staff side
def _render_case(referral_id: int, errors: list[str] | None = None, status: int = 200):
    if referral_id > MAX_ID:
        abort(404)
    try:
        view = svc.links_for(_me(), referral_id)
    except NotFound:
        abort(404)
    return render_template(
        "feedback/case.html",
        view=view,
        r=view.referral,
        status_labels=labels("feedback_status"),
        link_days=svc.link_days(),
        action_errors=errors or [],
    ), status


@bp.route("/case/<int:referral_id>")
def case(referral_id: int):
    return _render_case(referral_id)


def qr_images(url: str) -> dict[str, str]:
    """The link's QR code as data URIs: SVG (shown on the page, crisp at any size) and PNG (for
    WeChat, which cannot send an SVG as a picture). segno writes both without Pillow."""
    qr = segno.make(url, error="m")
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=8, border=4, dark="#000", light="#fff", xmldecl=False)
    svg = buf.getvalue()
    return {
        "svg": svg.decode(),
        "svg_uri": "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii"),
        "png_uri": qr.png_data_uri(scale=10, border=4, dark="#000", light="#fff"),
    }


@bp.route("/case/<int:referral_id>/new", methods=["POST"])
def create(referral_id: int):
    """Make a link. The answer is the page itself (not a redirect): the token exists only here."""
    if referral_id > MAX_ID:
        abort(404)
    try:
        with saving.attempt():
            link, token = svc.create_link(_me(), referral_id)
    except NotFound:
        abort(404)
    except Conflict as exc:
        return _render_case(referral_id, [exc.message], 409)
    url = _public_link(token)
    view = svc.links_for(_me(), referral_id)
    return render_template(
        "feedback/created.html",
        view=view,
        r=view.referral,
        link=link,
        url=url,
        qr=qr_images(url),
        base_problem=svc.public_base_problem() if _me().role == "admin" else None,
    )


def _public_link(token: str) -> str:
    """The link the firm opens: on PUBLIC_BASE_URL, never on the intranet host the staff member
    happens to use (that only when it is unset, for development)."""
    path = url_for("feedback.rate", token=token)
    root = request.script_root
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
    return svc.link_url(path, request.url_root)


@bp.route("/<int:link_id>/revoke", methods=["POST"])
def revoke(link_id: int):
    if link_id > MAX_ID:
        abort(404)
    try:
        with saving.attempt():
            link = svc.revoke(_me(), link_id)
    except NotFound:
        abort(404)
    except Conflict as exc:
        return _render_case(svc.referral_id_of(link_id), [exc.message], 409)
    flash(_("The feedback link was revoked; it no longer opens."), "success")
    return redirect(url_for("feedback.case", referral_id=link.referral_id))


# ------------------------------------------------------------------ public side
def _gone(exc: svc.LinkGone):
    return render_template("feedback/gone.html", message=exc.message, reason=exc.reason), 410


@bp.route("/r/<token>", methods=["GET", "POST"])
@allow(PUBLIC)
@form_view
def rate(token: str):
    """The firm's rating page. Shows the firm's name and the form, nothing else."""
    try:
        link = svc.lookup(token)
    except NotFound:
        abort(404)
    except svc.LinkGone as exc:
        return _gone(exc)
    form = RatingForm()
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate():
            try:
                with saving.attempt():
                    svc.submit_rating(
                        token, form.rating.data, form.comment.data, ip=request.remote_addr
                    )
            except ValidationFailed as exc:
                apply_errors(form, exc)
            except NotFound:
                abort(404)
            except svc.LinkGone as exc:
                return _gone(exc)
            else:
                return redirect(url_for("feedback.thanks"))
    return render_template("feedback/rate.html", form=form, firm=svc.firm_name(link)), status


@bp.route("/thanks")
@allow(PUBLIC)
def thanks():
    return render_template("feedback/thanks.html")
