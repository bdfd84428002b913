"""Every message the console shows is in the Indonesian catalogue, translated; and none is translated twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract
from jinja2.ext import babel_extract

from services.console.i18n import CATALOGUES, catalogue

pytestmark = pytest.mark.unit

CONSOLE = Path(__file__).resolve().parents[2] / "services" / "console"


def shown_messages() -> dict[str, str]:
    """Each message of the templates (`_`, `gettext`, `trans` blocks) and of the code (marked `N_`), with where."""
    found: dict[str, str] = {}
    for path in sorted((CONSOLE / "templates").rglob("*.html")):
        with path.open("rb") as source:
            for line, message, _comments, _context in extract(babel_extract, source, DEFAULT_KEYWORDS,
                                                              options={"extensions": "jinja2.ext.i18n"}):
                for text in message if isinstance(message, tuple) else (message,):
                    if text:
                        found.setdefault(text, f"{path.name}:{line}")
    for path in sorted(CONSOLE.rglob("*.py")):
        with path.open("rb") as source:
            for line, message, _comments, _context in extract("python", source, {"N_": None}):
                found.setdefault(message, f"{path.name}:{line}")
    return found


def test_every_message_shown_is_translated_into_indonesian():
    indonesian = catalogue("id")
    missing = {text: where for text, where in shown_messages().items()
               if indonesian.get(text) is None or not indonesian.get(text).string}
    assert missing == {}, "add to services/console/locales/id/*.po:\n" + "\n".join(
        f'#: {where}\nmsgid "{text}"\nmsgstr ""\n' for text, where in missing.items())


def test_the_catalogue_holds_no_message_the_console_no_longer_shows():
    shown = shown_messages()
    assert sorted(message.id for message in catalogue("id") if message.id and message.id not in shown) == []


def test_a_message_translated_otherwise_in_two_parts_is_refused(tmp_path: Path):
    (tmp_path / "id").mkdir()
    (tmp_path / "id" / "a.po").write_text('msgid "Sign in"\nmsgstr "Masuk"\n')
    (tmp_path / "id" / "b.po").write_text('msgid "Sign in"\nmsgstr "Log masuk"\n')
    with pytest.raises(ValueError, match="translated otherwise"):
        catalogue("id", tmp_path)


def test_the_catalogues_are_where_the_console_reads_them():
    assert (CATALOGUES / "id").is_dir() and list((CATALOGUES / "id").glob("*.po"))
