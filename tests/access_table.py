"""Who may use which endpoint: the product's access rules written out by hand.

This table is kept apart from the gate on purpose. It is written from the product's rules (the
README's "Demo logins" and workflow sections, the contract's API roles), not from
``advisors.permissions``: the access matrix (tests/test_access_matrix.py) calls every endpoint as
every role and compares what the gate did with this table, so a wrong rule in the code fails the
test instead of passing it.

A row is an endpoint (as in ``url_for``) and one mark per caller: ``x`` may use it, ``.`` may not.
``anon`` is a visitor who has not signed in. Whether a record is in the caller's scope (a bureau's
own firms, an advisor's own cases) is a second question the matrix asks separately (404).

To add a route: add its row under its area, with the roles the product rule names.
"""

from __future__ import annotations

CALLERS = ("admin", "finance_office", "pboc", "bureau", "advisor", "liaison", "anonymous")

TABLE = """
# endpoint                                admin fin pboc bureau advisor liaison anon

# ---- signing in, the home page, the language, the health check
auth.login                                  x    x   x    x      x       x      x
auth.logout                                 x    x   x    x      x       x      .
auth.change_password                        x    x   x    x      x       x      .
main.home                                   x    x   x    x      x       x      .
main.set_language                           x    x   x    x      x       x      x
main.healthz                                x    x   x    x      x       x      x

# ---- my account (sessions, API tokens) and my notifications: everyone signed in
account.profile                             x    x   x    x      x       x      .
account.create_token                        x    x   x    x      x       x      .
account.revoke_token                        x    x   x    x      x       x      .
account.revoke_other_sessions               x    x   x    x      x       x      .
notifications.index                         x    x   x    x      x       x      .
notifications.open_one                      x    x   x    x      x       x      .
notifications.read_all                      x    x   x    x      x       x      .

# ---- organisations and people: the administrator keeps them; the office reads them,
#      a liaison its own institution's people, an advisor their own profile
admin.orgs                                  x    x   x    .      .       .      .
admin.org_new                               x    .   .    .      .       .      .
admin.org_edit                              x    .   .    .      .       .      .
admin.users                                 x    x   x    .      .       x      .
admin.user_new                              x    .   .    .      .       .      .
admin.user_edit                             x    .   .    .      .       .      .
admin.user_password                         x    .   .    .      .       .      .
admin.user_activate                         x    .   .    .      .       .      .
admin.user_deactivate                       x    .   .    .      .       .      .
admin.advisor_profile                       x    x   x    .      x       x      .
throttling.index                            x    .   .    .      .       .      .
throttling.clear                            x    .   .    .      .       .      .
audit.index                                 x    x   .    .      .       .      .
jobs.index                                  x    x   .    .      .       .      .
jobs.run                                    x    x   .    .      .       .      .

# ---- reference data: the policy-tool catalogue (kept by the office and the central bank,
#      read by everyone), the townships (the administrator and the finance office) and the
#      indicator targets (the office roles read, the finance office sets them)
policies.index                              x    x   x    x      x       x      .
policies.new                                x    x   x    .      .       .      .
policies.edit                               x    x   x    .      .       .      .
townships.index                             x    x   .    .      .       .      .
townships.create                            x    x   .    .      .       .      .
townships.import_file                       x    x   .    .      .       .      .
townships.edit                              x    x   .    .      .       .      .
townships.rename                            x    x   .    .      .       .      .
townships.set_active                        x    x   .    .      .       .      .
townships.merge                             x    x   .    .      .       .      .
townships.unmatched                         x    x   .    .      .       .      .
townships.map_text                          x    x   .    .      .       .      .
townships.delete_alias                      x    x   .    .      .       .      .
indicators.targets                          x    x   x    .      .       .      .
indicators.save_targets                     .    x   .    .      .       .      .

# ---- the firm registry: office roles and bureaus (their own firms); advisors and liaisons
#      reach firms through their cases
firms.index                                 x    x   x    x      .       .      .
firms.new                                   x    x   x    x      .       .      .
firms.detail                                x    x   x    x      .       .      .
firms.edit                                  x    x   x    x      .       .      .

# ---- recommending firms: bureaus only (form, spreadsheet upload and its report)
intake.new                                  .    .   .    x      .       .      .
intake.upload                               .    .   .    x      .       .      .
intake.report                               .    .   .    x      .       .      .
intake.rejected_xlsx                        .    .   .    x      .       .      .
intake.template_xlsx                        .    .   .    x      .       .      .
intake.template_csv                         .    .   .    x      .       .      .

# ---- cases: everyone signed in reads the cases in their scope; the finance office triages
#      and assigns; the referring bureau withdraws and confirms
referrals.index                             x    x   x    x      x       x      .
referrals.detail                            x    x   x    x      x       x      .
referrals.export                            x    x   x    x      x       x      .
referrals.dashboard                         .    .   .    x      .       .      .
referrals.assign                            .    x   .    .      .       .      .
referrals.assign_bulk                       .    x   .    .      .       .      .
referrals.reject                            .    x   .    .      .       .      .
referrals.settle_proposal                   .    x   .    .      .       .      .
referrals.withdraw                          .    .   .    x      .       .      .
referrals.confirm                           .    .   .    x      .       .      .

# ---- advisor work: the advisor logs visits, financing stages and outcomes; the finance
#      office corrects a visit; office roles and the liaison read; bureaus do not
visits.new                                  .    .   .    .      x       .      .
visits.detail                               x    x   x    .      x       x      .
visits.edit                                 .    x   .    .      x       .      .
visits.application                          x    x   x    .      x       x      .
visits.edit_application                     .    .   .    .      x       .      .
visits.stage                                .    .   .    .      x       .      .
visits.outcome                              .    .   .    .      x       .      .
work.visits                                 x    x   x    .      x       x      .
work.visits_export                          x    x   x    .      x       x      .
work.pipeline                               x    x   x    .      x       x      .
work.pipeline_export                        x    x   x    .      x       x      .
work.institution                            x    x   x    .      .       x      .

# ---- risk reports: only the reporter (an advisor), the office roles and admins see them;
#      the finance office acknowledges and closes, the office roles add notes
risks.index                                 x    x   x    .      x       .      .
risks.detail                                x    x   x    .      x       .      .
risks.acknowledge                           .    x   .    .      .       .      .
risks.close                                 .    x   .    .      .       .      .
risks.note                                  .    x   x    .      .       .      .

# ---- firm feedback: the advisor, a referring bureau or the finance office makes a one-time
#      link; the firm rates through it without an account
feedback.case                               x    x   .    x      x       .      .
feedback.create                             x    x   .    x      x       .      .
feedback.revoke                             x    x   .    x      x       .      .
feedback.rate                               x    x   x    x      x       x      x
feedback.thanks                             x    x   x    x      x       x      x

# ---- assessments: the finance office compiles, adjusts and publishes; office roles read
#      everything and comment (finance office, central bank); advisors and liaisons read
#      their own rows; bureaus never
assessments.index                           x    x   x    .      x       x      .
assessments.ranking                         x    x   x    .      x       x      .
assessments.advisor                         x    x   x    .      x       x      .
assessments.compile_new                     .    x   .    .      .       .      .
assessments.recompile                       .    x   .    .      .       .      .
assessments.publish                         .    x   .    .      .       .      .
assessments.adjust                          .    x   .    .      .       .      .
assessments.withdraw_adjustment             .    x   .    .      .       .      .
assessments.comment                         .    x   x    .      .       .      .
assessments.notice                          x    x   x    .      .       .      .
assessments.notice_pdf                      x    x   x    .      .       .      .
assessments.notice_xlsx                     x    x   x    .      .       .      .
assessments.rubric                          x    x   x    .      .       .      .
assessments.rubric_version                  x    x   x    .      .       .      .
assessments.save_rubric                     .    x   .    .      .       .      .

# ---- JSON API (/api/v1, bearer tokens): the contract's and the README's role lists
api.openapi_document                        x    x   x    x      x       x      x
api.me                                      x    x   x    x      x       x      .
api.policy_tools                            x    x   x    x      x       x      .
api.townships                               x    x   x    x      x       x      .
api.enterprises                             x    x   x    x      .       .      .
api.enterprise                              x    x   x    x      .       .      .
api.submit_referrals                        .    .   .    x      .       .      .
api.list_referrals                          x    x   x    x      x       x      .
api.referral_detail                         x    x   x    x      x       x      .
api.assign_referral                         .    x   .    .      .       .      .
api.log_visit                               .    .   .    .      x       .      .
api.list_visits                             x    x   x    .      x       x      .
api.get_visit                               x    x   x    .      x       x      .
api.compile_assessment                      .    x   .    .      .       .      .
api.list_assessments                        x    x   x    .      x       x      .
api.get_assessment                          x    x   x    .      x       x      .
api.assessment_breakdown                    x    x   x    .      x       x      .
api.publish_assessment                      .    x   .    .      .       .      .
api.adjust_assessment                       .    x   .    .      .       .      .
api.withdraw_adjustment                     .    x   .    .      .       .      .
api.indicators                              x    x   x    .      x       x      .
api.get_targets                             x    x   x    .      .       x      .
api.put_targets                             .    x   .    .      .       .      .
"""


def _parse(text: str) -> dict[str, frozenset[str]]:
    rows: dict[str, frozenset[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        endpoint, *marks = line.split()
        if len(marks) != len(CALLERS) or set(marks) - {"x", "."}:
            raise ValueError(f"access table line {number}: {line!r}: one x or . per caller")
        if endpoint in rows:
            raise ValueError(f"access table line {number}: {endpoint} is listed twice")
        rows[endpoint] = frozenset(c for c, mark in zip(CALLERS, marks, strict=True) if mark == "x")
    return rows


ACCESS: dict[str, frozenset[str]] = _parse(TABLE)


def may(endpoint: str, caller: str) -> bool:
    """Whether ``caller`` (a role, or ``"anonymous"``) may use ``endpoint`` by the table."""
    return caller in ACCESS[endpoint]
