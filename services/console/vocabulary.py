"""The words the console shows for the platform's codes, and the marker of messages written in code.

`N_` marks a message for the catalogue without translating it: the page translates it in the reader's language.
"""

from __future__ import annotations

from shared.web.access import Role


def N_(message: str) -> str:  # noqa: N802 -- gettext's conventional name for a no-op marker
    return message


ROLE_NAMES = {
    Role.OPERATOR: N_("ministry operator"),
    Role.TASK_FORCE: N_("task force"),
    Role.COMPANY: N_("company"),
    Role.ESTATE: N_("industrial estate"),
    Role.AGENCY: N_("agency"),
    Role.REGIONAL_OFFICE: N_("regional office"),
    Role.HEALTH_OFFICE: N_("health office"),
}

# The permit as the registry tells an officer at the gate.
REGISTRY_STATUS_NAMES = {
    "valid": N_("valid"),
    "frozen": N_("frozen"),
    "revoked": N_("revoked"),
    "closed": N_("temporarily closed"),
}
# The permit as its company and the ministry follow it.
PERMIT_STATUS_NAMES = {
    "SUBMITTED": N_("submitted, awaiting the ministry"),
    "ISSUED": N_("issued"),
    "REJECTED": N_("rejected"),
    "FROZEN": N_("frozen"),
    "REVOKED": N_("revoked"),
}
# A reporting period as its company and the ministry follow it.
PERIOD_STATUS_NAMES = {
    "open": N_("open"),
    "submitted": N_("reported on time"),
    "late": N_("reported late"),
    "overdue": N_("overdue, not reported"),
    "excused": N_("excused (plant closed)"),
    "ended": N_("ended (permit revoked)"),
}
# The PPKM sectors of the plant's activities (Inmendagri): what may operate, and how many on site.
SECTOR_CLASS_NAMES = {
    "critical": N_("critical sector"),
    "essential": N_("essential sector"),
    "non_essential": N_("non-essential sector"),
}
