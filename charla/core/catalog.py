"""Every sentence a learner can receive, in their native language: gettext catalogs read through Babel.

Message ids are keys (`say("forget", "es")`), not English sentences, so a call site never changes when the
wording does. The sentences live in `charla/locale/<lang>/LC_MESSAGES/charla.po` (compiled to the `.mo`
beside it, both committed); English is the fallback for a language without a catalog and for an entry a
catalog lacks. A new native language is one more `.po` file (see `make messages` and `make catalogs`).
Ids built at run time are marked with `N_` where they are written down, so `pybabel extract` finds them.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "charla"
FALLBACK = "en"


def N_(key: str) -> str:
    """Mark `key` as a message id for the extractor; returns it unchanged (translate it later with `say`)."""
    return key


@cache
def shipped() -> tuple[str, ...]:
    """The languages with a catalog, English first."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))
    return tuple(sorted(found, key=lambda lang: lang != FALLBACK))


def say(key: str, lang: str, **values: object) -> str:
    """The sentence `key` in `lang` (a code such as "es", "pt_BR" or "pt-BR"), placeholders filled in."""
    return _translations(_catalog_language(lang)).gettext(key).format(**values)


def _catalog_language(lang: str) -> str:
    """`lang` itself, else its base language ("pt_BR" → "pt"), when shipped; English otherwise."""
    available = shipped()
    base = lang.replace("-", "_").split("_")[0].lower()
    return lang if lang in available else base if base in available else FALLBACK


@cache
def _translations(lang: str) -> gettext.NullTranslations:
    english = Translations.load(str(LOCALE_DIR), [FALLBACK], DOMAIN)
    if lang == FALLBACK:
        return english
    found = Translations.load(str(LOCALE_DIR), [lang], DOMAIN)
    found.add_fallback(english)
    return found
