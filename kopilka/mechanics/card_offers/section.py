"""Card-linked offers' section of the program file, `card_offers`: where the bank's
webhooks go.

    card_offers:
      webhook:
        url: https://bank.example/kopilka/webhooks
        secret_env: KOPILKA_CLO_WEBHOOK_SECRET

The secret itself never goes in the file (every operator reads it): `secret_env` names
the server's environment variable that holds it (at least 16 characters; shorter, or
unset, and nothing is sent — the webhooks wait in the outbox).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader

KEY = "card_offers"
SECTION_KEYS = ("webhook",)
WEBHOOK_KEYS = ("url", "secret_env", "secret")
SECRET_ENV_PATTERN = re.compile(r"KOPILKA_CLO_[A-Z0-9_]{1,100}")
URL_PATTERN = re.compile(r"https?://[^\s/$.?#][^\s]{0,490}")


@dataclass(frozen=True)
class CardOfferSettings:
    webhook_url: str | None = None
    secret_env: str | None = None


def parse_section(top: Reader, context: SectionContext) -> CardOfferSettings | None:
    del context
    section = top.mapping(KEY, SECTION_KEYS)
    if section is None:
        return None
    hook = section.mapping("webhook", WEBHOOK_KEYS)
    if hook is None:
        return CardOfferSettings()
    if "secret" in hook.data:
        hook.report(hook.at("secret"), "a secret never goes in the program file (every "
                                       "operator reads it): name its environment variable "
                                       "in secret_env")  # fmt: skip
    url = hook.text("url", pattern=URL_PATTERN, what="an http(s) URL", required=True,
                    max_length=500)  # fmt: skip
    name = hook.text("secret_env", pattern=SECRET_ENV_PATTERN, required=True,
                     what="an environment variable name beginning KOPILKA_CLO_ "
                          "(capital letters, digits, '_')")  # fmt: skip
    return CardOfferSettings(url, name)


def card_offers_of(sections: Mapping[str, object]) -> CardOfferSettings | None:
    settings = sections.get(KEY)
    return settings if isinstance(settings, CardOfferSettings) else None
