"""The synthetic catalogue's vocabulary: category tree, brands, prices and bilingual text.

Every figure here is a modelling assumption of the generated marketplace, chosen to look like a
Bangladeshi general marketplace (prices in taka, a long tail of cheap groceries and fashion, a few
expensive phones and appliances). The generator combines these pieces with its random draws; this
module holds no logic beyond building the text tables once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Subcategory:
    """A leaf of the category tree with its price level and vocabulary."""

    category: str
    name_en: str
    name_bn: str
    median_price_bdt: float
    #: Log-normal spread of prices around the median.
    price_sigma: float
    brands: tuple[str, ...]


SUBCATEGORIES: Final[tuple[Subcategory, ...]] = (
    Subcategory("fashion", "saree", "শাড়ি", 2200, 0.6, ("Aarong", "Kay Kraft", "Anjan's")),
    Subcategory("fashion", "panjabi", "পাঞ্জাবি", 1800, 0.5, ("Yellow", "Ecstasy", "Sailor")),
    Subcategory("fashion", "shoes", "জুতা", 1500, 0.5, ("Bata", "Apex", "Lotto")),
    Subcategory("fashion", "t-shirt", "টি-শার্ট", 450, 0.4, ("Yellow", "Easy", "Richman")),
    Subcategory("electronics", "television", "টেলিভিশন", 32000, 0.5, ("Walton", "Samsung", "Sony")),
    Subcategory("electronics", "refrigerator", "ফ্রিজ", 45000, 0.4, ("Walton", "LG", "Singer")),
    Subcategory("electronics", "headphones", "হেডফোন", 1800, 0.8, ("Xiaomi", "JBL", "Edifier")),
    Subcategory("electronics", "ceiling fan", "সিলিং ফ্যান", 3200, 0.3, ("Walton", "GFC", "Jamuna")),
    Subcategory("mobile", "smartphone", "স্মার্টফোন", 18000, 0.6, ("Samsung", "Xiaomi", "Symphony")),
    Subcategory("mobile", "power bank", "পাওয়ার ব্যাংক", 1500, 0.4, ("Anker", "Xiaomi", "Baseus")),
    Subcategory("mobile", "phone cover", "ফোন কভার", 250, 0.5, ("Generic", "Spigen", "Nillkin")),
    Subcategory("groceries", "rice", "চাল", 850, 0.3, ("Chashi", "Pran", "ACI")),
    Subcategory("groceries", "soybean oil", "সয়াবিন তেল", 900, 0.2, ("Teer", "Rupchanda", "Fresh")),
    Subcategory("groceries", "lentils", "ডাল", 160, 0.3, ("ACI", "Pran", "Radhuni")),
    Subcategory("groceries", "tea", "চা", 320, 0.4, ("Ispahani", "Seylon", "Kazi & Kazi")),
    Subcategory("beauty", "face wash", "ফেস ওয়াশ", 350, 0.4, ("Ponds", "Garnier", "Himalaya")),
    Subcategory("beauty", "lipstick", "লিপস্টিক", 600, 0.6, ("Maybelline", "Lakme", "Revlon")),
    Subcategory("beauty", "hair oil", "চুলের তেল", 220, 0.3, ("Parachute", "Jui", "Bajaj")),
    Subcategory("home", "bedsheet", "বেডশিট", 1400, 0.4, ("Aarong", "Bengal", "RFL")),
    Subcategory("home", "pressure cooker", "প্রেসার কুকার", 2600, 0.3, ("Kiam", "Prestige", "RFL")),
    Subcategory("home", "blender", "ব্লেন্ডার", 4200, 0.4, ("Miyako", "Panasonic", "Vision")),
    Subcategory("books", "novel", "উপন্যাস", 350, 0.4, ("Anyaprokash", "Prothoma", "Ittadi")),
    Subcategory("books", "textbook", "পাঠ্যবই", 550, 0.4, ("Panjeree", "Lecture", "Oxford")),
    Subcategory("sports", "cricket bat", "ক্রিকেট ব্যাট", 2500, 0.5, ("SG", "Gray-Nicolls", "CA")),
    Subcategory("sports", "football", "ফুটবল", 900, 0.4, ("Nivia", "Adidas", "Nike")),
)  # fmt: skip

#: Transliterations used in Banglish queries and reviews (Bengali written in Latin letters).
BANGLISH_NOUNS: Final[dict[str, str]] = {
    "saree": "shari", "panjabi": "panjabi", "shoes": "juta", "t-shirt": "tshirt",
    "television": "tv", "refrigerator": "fridge", "headphones": "headphone",
    "ceiling fan": "fan", "smartphone": "mobile", "power bank": "powerbank",
    "phone cover": "mobile cover", "rice": "chal", "soybean oil": "tel", "lentils": "dal",
    "tea": "cha", "face wash": "facewash", "lipstick": "lipstick", "hair oil": "chuler tel",
    "bedsheet": "bedsheet", "pressure cooker": "cooker", "blender": "blender",
    "novel": "uponnash", "textbook": "boi", "cricket bat": "bat", "football": "football",
}  # fmt: skip

#: Search query patterns per language; ``{noun}`` and ``{brand}`` are filled per subcategory.
QUERY_PATTERNS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("{brand} {noun}", "{noun} price in bangladesh", "best {noun}", "cheap {noun}"),
    "bn": ("{brand} {noun}", "{noun} দাম", "ভালো {noun}", "সস্তা {noun}"),
    "banglish": ("{brand} {noun} dam", "{noun} koto", "valo {noun}", "sosta {noun}"),
}

#: Review sentences by language and sentiment; ``{noun}`` is the product's noun in that language.
REVIEW_PATTERNS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("en", "positive"): (
        "Excellent {noun}, highly recommended.",
        "Very good quality {noun} and fast delivery.",
        "Loved this {noun}, exactly as described.",
    ),
    ("en", "neutral"): (
        "The {noun} is okay for the price.",
        "Average {noun}, delivery took a while.",
        "Not bad, not great. The {noun} does the job.",
    ),
    ("en", "negative"): (
        "Poor quality {noun}, waste of money.",
        "The {noun} arrived damaged, very disappointed.",
        "Fake {noun}, nothing like the pictures.",
    ),
    ("bn", "positive"): (
        "খুব ভালো {noun}, সবাইকে কিনতে বলবো।",
        "অসাধারণ মান, দ্রুত ডেলিভারি পেয়েছি।",
        "{noun}টি একদম ছবির মতো, আমি খুশি।",
    ),
    ("bn", "neutral"): (
        "মোটামুটি {noun}, দাম অনুযায়ী ঠিক আছে।",
        "{noun} চলনসই, ডেলিভারি একটু দেরিতে এসেছে।",
        "খারাপ না, তবে আরও ভালো আশা করেছিলাম।",
    ),
    ("bn", "negative"): (
        "একদম বাজে {noun}, টাকা নষ্ট।",
        "{noun}টি ভাঙা অবস্থায় এসেছে, খুব হতাশ।",
        "নকল পণ্য, ছবির সাথে কোনো মিল নেই।",
    ),
    ("banglish", "positive"): (
        "khub bhalo {noun}, sobaike recommend korbo.",
        "osadharon quality, delivery fast chilo.",
        "{noun} ta ekdom chobir moto, ami khushi.",
    ),
    ("banglish", "neutral"): (
        "motamuti {noun}, dam hisebe thik ase.",
        "{noun} cholonsoi, delivery ektu late.",
        "kharap na, tobe aro bhalo asha korechilam.",
    ),
    ("banglish", "negative"): (
        "ekdom baje {noun}, taka noshto.",
        "{noun} ta bhanga obosthay ashche, khub hotash.",
        "nokol product, chobir sathe kono mil nai.",
    ),
}

#: Product description sentences; ``{brand}`` and ``{noun}`` are filled per product.
DESCRIPTION_PATTERNS: Final[dict[str, str]] = {
    "en": "Original {brand} {noun}. Cash on delivery and bKash accepted, delivery across "
    "Bangladesh.",
    "bn": "আসল {brand} {noun}। ক্যাশ অন ডেলিভারি ও বিকাশে পেমেন্ট, সারা বাংলাদেশে ডেলিভারি।",
}

#: Variants appended to titles so that products of one brand and leaf differ.
TITLE_VARIANTS: Final[tuple[tuple[str, str], ...]] = (
    ("Classic", "ক্লাসিক"),
    ("Premium", "প্রিমিয়াম"),
    ("Eco", "ইকো"),
    ("Plus", "প্লাস"),
    ("Pro", "প্রো"),
    ("Lite", "লাইট"),
    ("Family Pack", "ফ্যামিলি প্যাক"),
    ("Festive Edition", "উৎসব সংস্করণ"),
)
