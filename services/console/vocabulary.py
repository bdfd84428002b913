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

# A service's field refusal, by its kind (`type` in the service's problem), in the reader's language; `%(limit)s` is
# the bound the refusal names. Kinds not listed keep the service's own message (the domain's rules word their own).
FIELD_REFUSALS = {
    "missing": N_("This field is required."),
    "string_too_short": N_("At least %(limit)s characters."),
    "string_too_long": N_("At most %(limit)s characters."),
    "string_pattern_mismatch": N_("This is not in the expected format."),
    "too_short": N_("At least %(limit)s entries."),
    "too_long": N_("At most %(limit)s entries."),
    "greater_than_equal": N_("At least %(limit)s."),
    "greater_than": N_("More than %(limit)s."),
    "less_than_equal": N_("At most %(limit)s."),
    "less_than": N_("Less than %(limit)s."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "float_parsing": N_("Enter a number."),
    "bool_parsing": N_("Choose yes or no."),
    "date_parsing": N_("Enter a valid date."),
    "date_from_datetime_parsing": N_("Enter a valid date."),
    "literal_error": N_("Choose one of the options given."),
    "enum": N_("Choose one of the options given."),
    "uuid_parsing": N_("This is not a valid reference."),
}
# A service's refusal, by its title, in the reader's language; the service's own detail follows it.
REFUSAL_TITLES = {
    "Invalid request": N_("Some of what was entered cannot be accepted."),
    "Not found": N_("Not found, or not yours to see."),
    "Forbidden": N_("Your role may not do this."),
    "Conflict": N_("This conflicts with the current state."),
    "Illegal transition": N_("The permit's current status does not allow this."),
    "Request already decided": N_("This request has already been decided."),
    "Review already decided": N_("This review has already been decided."),
    "Request for another freeze": N_("This request concerns an earlier freeze."),
    "Sanction no longer stands": N_("The sanction no longer stands."),
    "Nothing to object to": N_("There is no decision to object to."),
    "Objection too late": N_("The time for an objection has passed."),
    "Already objected": N_("An objection to this decision has already been filed."),
    "Permit revoked": N_("The permit has been revoked."),
    "Period closed": N_("This reporting period is closed."),
    "Already acknowledged": N_("This alert has already been acknowledged."),
    "Not notified at this level": N_("This alert has not reached your level."),
    "Closure period not over": N_("The closure period is not over yet."),
    "Isolation not over": N_("The isolation period is not over yet."),
    "Contacts still in quarantine": N_("Close contacts are still in quarantine."),
    "Payload too large": N_("What was sent is larger than allowed."),
    "Too many requests": N_("Too many requests; please try again in a moment."),
}
# A company's reactivation request, from filing to the ministry's decision.
REQUEST_STATUS_NAMES = {
    "pending": N_("awaiting the ministry's decision"),
    "approved": N_("approved: the permit is reactivated"),
    "rejected": N_("rejected: the permit stays frozen"),
}
# The sanctions a company may object to (UU 30/2014 Pasal 77), and what the ministry decides on its objection.
SANCTION_NAMES = {
    "freeze": N_("freeze"),
    "revoke": N_("revocation"),
}
OBJECTION_OUTCOME_NAMES = {
    "upheld": N_("upheld: the sanction stands"),
    "overturned": N_("overturned: the sanction is reversed"),
    "partly": N_("partly granted: the revocation becomes a freeze"),
}
# An alert as the notifier raises it: its severity, the level of task force it has reached, the event behind it.
SEVERITY_NAMES = {"high": N_("high"), "low": N_("low")}
LEVEL_NAMES = {"regency": N_("regency task force"), "province": N_("province task force"),
               "national": N_("national task force")}
# What happened, by the event that raised the alert; an event not named here is shown by its name.
EVENT_NAMES = {
    "CaseDetected": N_("A confirmed case was reported"),
    "ClusterDeclared": N_("A cluster was declared"),
    "PossibleClusterRaised": N_("A possible cluster was raised"),
    "ClosureRecommended": N_("A closure was recommended"),
    "ClosureRecommendationOverdue": N_("A closure recommendation is overdue"),
    "ClosureRecommendationDecided": N_("A closure recommendation was decided"),
    "FacilityClosureOrdered": N_("A closure was ordered"),
    "FacilityReopened": N_("The plant reopened"),
    "ReportOverdue": N_("A report is overdue"),
    "WarningIssued": N_("A warning was issued"),
    "SanctionRecommended": N_("A sanction was recommended"),
    "CapacityBreachDetected": N_("Staffing over the PPKM limit"),
    "PermitFrozen": N_("The permit was frozen"),
    "PermitRevoked": N_("The permit was revoked"),
}
# An officer's grounds for a freeze; missed reports and capacity breaches are the reports service's ladder's alone.
GROUNDS = {
    "inspection_finding": N_("Health-protocol violation found on inspection"),
    "false_declaration": N_("A finding contradicts a report declared true"),
    "closure_not_observed": N_("The plant operated during an ordered closure"),
    "company_request": N_("The company's own request"),
    "other": N_("Another ground, stated in the reason"),
}
GROUND_NAMES = GROUNDS | {"missed_reports": N_("Missed reports"),
                          "capacity_breaches": N_("Repeated breaches of the staffing cap")}
