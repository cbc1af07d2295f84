"""Reference values of the Bangladeshi marketplace: geography, payment rails, catalogue.

These are facts about the domain (the 8 divisions and 64 districts, the payment methods the shop
takes), shared by the data contracts, the generator, the importers and later the features. They
are plain tuples and dicts so the module imports nothing.
"""

from __future__ import annotations

from typing import Final

#: The 64 districts of Bangladesh, by division (divisions as renamed in 2018: Chattogram, Barishal).
DISTRICTS_BY_DIVISION: Final[dict[str, tuple[str, ...]]] = {
    "Dhaka": (
        "Dhaka", "Faridpur", "Gazipur", "Gopalganj", "Kishoreganj", "Madaripur", "Manikganj",
        "Munshiganj", "Narayanganj", "Narsingdi", "Rajbari", "Shariatpur", "Tangail",
    ),
    "Chattogram": (
        "Bandarban", "Brahmanbaria", "Chandpur", "Chattogram", "Cox's Bazar", "Cumilla", "Feni",
        "Khagrachhari", "Lakshmipur", "Noakhali", "Rangamati",
    ),
    "Rajshahi": (
        "Bogura", "Chapainawabganj", "Joypurhat", "Naogaon", "Natore", "Pabna", "Rajshahi",
        "Sirajganj",
    ),
    "Khulna": (
        "Bagerhat", "Chuadanga", "Jashore", "Jhenaidah", "Khulna", "Kushtia", "Magura",
        "Meherpur", "Narail", "Satkhira",
    ),
    "Barishal": ("Barguna", "Barishal", "Bhola", "Jhalokathi", "Patuakhali", "Pirojpur"),
    "Sylhet": ("Habiganj", "Moulvibazar", "Sunamganj", "Sylhet"),
    "Rangpur": (
        "Dinajpur", "Gaibandha", "Kurigram", "Lalmonirhat", "Nilphamari", "Panchagarh",
        "Rangpur", "Thakurgaon",
    ),
    "Mymensingh": ("Jamalpur", "Mymensingh", "Netrokona", "Sherpur"),
}  # fmt: skip

DIVISIONS: Final[tuple[str, ...]] = tuple(DISTRICTS_BY_DIVISION)
DISTRICTS: Final[tuple[str, ...]] = tuple(d for ds in DISTRICTS_BY_DIVISION.values() for d in ds)
DIVISION_OF_DISTRICT: Final[dict[str, str]] = {
    district: division
    for division, districts in DISTRICTS_BY_DIVISION.items()
    for district in districts
}

#: Mobile wallets, cards and cash on delivery.
WALLETS: Final[tuple[str, ...]] = ("bkash", "nagad", "rocket")
PAYMENT_METHODS: Final[tuple[str, ...]] = (*WALLETS, "card", "cod")

EVENT_TYPES: Final[tuple[str, ...]] = (
    "view", "search", "add_to_cart", "remove_from_cart", "purchase",
)  # fmt: skip

ORDER_STATUSES: Final[tuple[str, ...]] = ("delivered", "returned", "cod_refused", "cancelled")
PAYMENT_STATUSES: Final[tuple[str, ...]] = ("succeeded", "failed", "pending_cod")

#: Labelled fraud patterns (ground truth), each with a distinct, learnable signature.
FRAUD_PATTERNS: Final[tuple[str, ...]] = (
    "account_takeover",  # SIM swap: new device + wallet change + unusually high amount
    "mule_ring",  # accounts sharing devices, phone numbers and delivery addresses
    "promo_abuse",  # fresh accounts farming vouchers
    "velocity_burst",  # many payments in minutes
    "card_testing",  # many small card amounts, mostly declined
)

AGE_BANDS: Final[tuple[str, ...]] = ("18-24", "25-34", "35-44", "45-54", "55+")
GENDERS: Final[tuple[str, ...]] = ("female", "male", "other")
LANGUAGES: Final[tuple[str, ...]] = ("bn", "en")
REVIEW_LANGUAGES: Final[tuple[str, ...]] = ("bn", "en", "banglish")
DEVICE_TYPES: Final[tuple[str, ...]] = ("android", "ios", "web")
ACQUISITION_CHANNELS: Final[tuple[str, ...]] = (
    "organic", "facebook", "google", "referral", "affiliate", "tv",
)  # fmt: skip
SENTIMENTS: Final[tuple[str, ...]] = ("negative", "neutral", "positive")

#: Top-level categories of the catalogue.
CATEGORIES: Final[tuple[str, ...]] = (
    "fashion", "electronics", "groceries", "beauty", "home", "books", "mobile", "sports",
)  # fmt: skip
