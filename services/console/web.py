"""What every page of the console stands on: the templates in the reader's language, the session, CSRF, roles.

Pages are rendered on the server and work without scripts; the few scripts there are (the QR scanner, the report
draft) come from the console itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from services.console.backend import Backend, Refused
from services.console.i18n import LOCALE_COOKIE, Formats, chosen_locale, translations
from services.console.oidc import Provider
from services.console.sessions import SESSION_COOKIE, Session, Sessions
from services.console.settings import ConsoleSettings
from services.console.vocabulary import (
    FIELD_REFUSALS,
    N_,
    PERIOD_STATUS_NAMES,
    PERMIT_STATUS_NAMES,
    REFUSAL_TITLES,
    REGISTRY_STATUS_NAMES,
    ROLE_NAMES,
    SECTOR_CLASS_NAMES,
)
from shared import regions
from shared.web.access import Role, TokenVerifier

TEMPLATES = Path(__file__).parent / "templates"
# A path of the console's own to go back to after signing in or choosing a language: never another origin.
_OWN_PATH = re.compile(r"^/(?![/\\])[A-Za-z0-9/_.~%?=&+-]{0,500}$")


# The console's largest form (the weekly report) has some sixty fields, its longest a case's handling; the services
# bound each field further and name it when it is over.
FORM_FIELDS_MAX = 100
FORM_VALUE_MAX = 4000
_REGIONS = regions.KemendagriRegions()


def region_name(code: str | None) -> str:
    """`Kabupaten Bekasi (32.16)`, or the code alone when the dataset does not name it."""
    if not code:
        return "–"
    try:
        name = _REGIONS.name_of(code)
    except (KeyError, ValueError):
        name = None
    return f"{name} ({code})" if name else code


def own_path(candidate: str | None, fallback: str = "/") -> str:
    return candidate if candidate and _OWN_PATH.fullmatch(candidate) else fallback


@dataclass
class Console:
    """The console's parts, one a process: held by the app, reached by every page."""

    settings: ConsoleSettings
    sessions: Sessions
    backend: Backend
    provider: Provider | None  # None: no identity provider configured, the public pages only
    verifier: TokenVerifier | None
    environments: dict[str, jinja2.Environment]

    @classmethod
    def environments_for(cls, folder: Path = TEMPLATES) -> dict[str, jinja2.Environment]:
        found = {}
        for locale, catalogue in translations().items():
            environment = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True,
                                             extensions=["jinja2.ext.i18n"], undefined=jinja2.StrictUndefined)
            environment.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]
            translate = catalogue.gettext
            environment.globals |= {
                # A message chosen in code, translated and then escaped like any text (`_` would mark it safe).
                "say": translate,
                "role_name": _naming(ROLE_NAMES, translate),
                "status_name": _naming(REGISTRY_STATUS_NAMES, translate),
                "permit_status_name": _naming(PERMIT_STATUS_NAMES, translate),
                "period_status_name": _naming(PERIOD_STATUS_NAMES, translate),
                "sector_name": _naming(SECTOR_CLASS_NAMES, translate),
                "region_name": region_name,
            }
            found[locale] = environment
        return found


def _naming(names: Mapping[Any, str], translate: Callable[[str], str]) -> Callable[[str | None], str]:
    """A code's words in the reader's language; a code the console has no words for is shown as it is."""
    return lambda code: translate(names[code]) if code is not None and code in names else (code or "–")


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def locale_of(request: Request) -> str:
    return chosen_locale(request.cookies.get(LOCALE_COOKIE))


def session_of(request: Request) -> Session | None:
    return console_of(request).sessions.find(request.cookies.get(SESSION_COOKIE))


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    console = console_of(request)
    locale = locale_of(request)
    session = context.pop("session", None) or session_of(request)
    page = console.environments[locale].get_template(template).render(
        request=request, locale=locale, fmt=Formats(locale), session=session,
        roles=Role, path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        **context)
    return HTMLResponse(page, status_code=status)


class NotSignedIn(Exception):
    """The page needs a session: the person is sent to sign in, and back here afterwards."""


class WrongRole(Exception):
    """Signed in, but this page is for other roles."""


def signed_in(request: Request, roles: Iterable[Role] | None = None) -> Session:
    session = session_of(request)
    if session is None:
        raise NotSignedIn
    if roles is not None and session.principal.role not in set(roles):
        raise WrongRole
    return session


async def checked_form(request: Request, session: Session) -> dict[str, str]:
    """The posted form, once its CSRF token matches the session's (a form posted from elsewhere does not)."""
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if len(fields) > FORM_FIELDS_MAX or any(len(key) > 80 or len(value) > FORM_VALUE_MAX
                                            for key, value in fields.items()):
        raise Refused(413, N_("The form is larger than it can be."))
    if not session.csrf_matches(fields.pop("csrf", None)):
        raise Refused(403, N_("The form has expired or did not come from this console. Please try again."))
    return fields


def _translate(request: Request) -> Callable[[str], str]:
    """The reader's catalogue, as the pages' `say`."""
    return cast("Callable[[str], str]", console_of(request).environments[locale_of(request)].globals["say"])


def worded_errors(request: Request, refused: Refused | None, lists: Iterable[str] = ()) -> dict[str, str]:
    """Each refused field's message in the reader's language, under the input it concerns: a list's item
    (`kbli.0`) under the list's one input. A kind of refusal the console has no words for keeps the service's."""
    if refused is None:
        return {}
    translate, number, folded = _translate(request), Formats(locale_of(request)).number, set(lists)
    found: dict[str, str] = {}
    for name, refusal in refused.fields.items():
        head, _, tail = name.rpartition(".")
        words = FIELD_REFUSALS.get(refusal.kind or "")
        if words is None or ("%(limit)s" in words and refusal.limit is None):
            message = refusal.message
        else:
            message = translate(words) % {"limit": number(refusal.limit)} if refusal.limit is not None \
                else translate(words)
        found.setdefault(head if head in folded and tail.isdigit() else name, message)
    return found


def worded_problem(request: Request, refused: Refused | None, *, with_fields: bool = False) -> str | None:
    """The refusal as one message above the form, in the reader's language first and then the service's own
    detail. None when it names fields (each is shown beside its own) unless `with_fields`."""
    if refused is None or (refused.fields and not with_fields):
        return None
    translate = _translate(request)
    words = REFUSAL_TITLES.get(refused.title or "")
    if words is None:
        return translate(refused.message)  # the console's own message, or a service's without a known title
    return f"{translate(words)} ({refused.message})" if refused.message != refused.title else translate(words)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)

