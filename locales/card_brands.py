"""Card networks as their owners write them: processors name them in lower case ("visa",
"amex", Stripe's `card.brand`), which is a key, not a name to show."""

from __future__ import annotations

# Stripe's `card.brand` values (and the sandbox gateway's) and the networks' own spelling.
# Brand names are not translated; an unknown network is shown as the localised "Card".
BRAND_NAMES: dict[str, str] = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "american_express": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "diners_club": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
    "cartes_bancaires": "Cartes Bancaires",
    "eftpos_au": "eftpos",
    "interac": "Interac",
}


def brand_name(brand: str) -> str | None:
    """The network's name for a processor's brand key; None when the network is unknown."""
    return BRAND_NAMES.get(brand.strip().lower().replace(" ", "_").replace("-", "_"))
