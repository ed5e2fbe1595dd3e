"""The demo shop's fixed catalogue, channels and people's names (plain data, no logic)."""

from __future__ import annotations

# sku, name, category, price, cost (CNY)
PRODUCTS: list[tuple[str, str, str, float, float]] = [
    ("PH-100", "Aurora phone", "phones", 2999.0, 2100.0),
    ("PH-200", "Aurora phone Pro", "phones", 4599.0, 3150.0),
    ("PH-050", "Lite phone", "phones", 1299.0, 950.0),
    ("AC-CASE", "Phone case", "accessories", 99.0, 22.0),
    ("AC-GLASS", "Screen protector", "accessories", 49.0, 8.0),
    ("AC-CHRG", "Fast charger", "accessories", 149.0, 45.0),
    ("AC-CABLE", "Braided cable", "accessories", 59.0, 12.0),
    ("AU-BUDS", "Wireless earbuds", "audio", 499.0, 210.0),
    ("AU-BUDSP", "Wireless earbuds Pro", "audio", 899.0, 390.0),
    ("AU-SPK", "Bluetooth speaker", "audio", 349.0, 150.0),
    ("AU-HEAD", "Over-ear headphones", "audio", 1199.0, 560.0),
    ("HM-LAMP", "Smart lamp", "home", 199.0, 80.0),
    ("HM-PLUG", "Smart plug (2-pack)", "home", 129.0, 48.0),
    ("HM-CAM", "Home camera", "home", 299.0, 130.0),
    ("HM-HUB", "Smart home hub", "home", 499.0, 230.0),
    ("WR-BAND", "Fitness band", "wearables", 249.0, 100.0),
    ("WR-WATCH", "Smart watch", "wearables", 1499.0, 820.0),
    ("WR-STRAP", "Watch strap", "wearables", 129.0, 25.0),
    ("CM-LAPTOP", "Ultrabook 14", "computers", 6999.0, 5400.0),
    ("CM-MOUSE", "Wireless mouse", "computers", 149.0, 50.0),
    ("CM-KEYB", "Mechanical keyboard", "computers", 499.0, 210.0),
    ("CM-SLEEVE", "Laptop sleeve", "computers", 169.0, 40.0),
    ("CM-HUB", "USB-C hub", "computers", 259.0, 90.0),
    ("SV-CARE", "Care+ protection plan", "services", 399.0, 60.0),
]

# Items that are bought together (cross-sell structure for recommendations to find).
COMPLEMENTS: dict[str, list[str]] = {
    "PH-100": ["AC-CASE", "AC-GLASS", "AC-CHRG", "SV-CARE"],
    "PH-200": ["AC-CASE", "AC-GLASS", "AU-BUDSP", "SV-CARE"],
    "PH-050": ["AC-CASE", "AC-GLASS"],
    "AU-BUDS": ["AC-CABLE"],
    "WR-WATCH": ["WR-STRAP", "AC-CHRG"],
    "WR-BAND": ["WR-STRAP"],
    "CM-LAPTOP": ["CM-SLEEVE", "CM-MOUSE", "CM-HUB", "SV-CARE"],
    "CM-KEYB": ["CM-MOUSE"],
    "HM-HUB": ["HM-PLUG", "HM-LAMP"],
    "HM-CAM": ["HM-PLUG"],
}

CATEGORIES = sorted({p[2] for p in PRODUCTS})

# channel: (share of new customers, acquisition cost per customer in CNY,
#           share who ever buy, multiplier on the chance of dropping out after a purchase)
CHANNELS: dict[str, tuple[float, float, float, float]] = {
    "ads": (0.30, 85.0, 0.55, 1.35),
    "social": (0.20, 48.0, 0.58, 1.15),
    "search": (0.25, 18.0, 0.65, 1.00),
    "referral": (0.10, 30.0, 0.75, 0.70),
    "offline": (0.15, 110.0, 0.72, 0.85),
}

CAMPAIGNS: dict[str, list[str]] = {
    "ads": ["brand_search", "retargeting", "double11"],
    "social": ["wechat_moments", "douyin_launch"],
    "search": ["seo"],
    "referral": ["invite_a_friend"],
    "offline": ["store_opening", "tech_fair"],
}

SURNAMES = [
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Lin",
    "Gao",
    "Luo",
    "Zheng",
    "Liang",
    "Xie",
    "Song",
    "Tang",
    "Han",
]
GIVEN_NAMES = [
    "Wei",
    "Fang",
    "Na",
    "Min",
    "Jing",
    "Li",
    "Qiang",
    "Lei",
    "Jun",
    "Yang",
    "Yong",
    "Yan",
    "Jie",
    "Tao",
    "Ming",
    "Chao",
    "Xiu",
    "Xia",
    "Ping",
    "Gang",
    "Hui",
    "Lan",
    "Hong",
    "Bo",
    "Yu",
    "Hao",
    "Xin",
    "Ying",
    "Kai",
    "Rui",
    "Ling",
    "Dan",
    "Peng",
    "Fei",
    "Ning",
    "Zhen",
    "Qing",
    "Yi",
]
# city, province, weight
CITIES = [
    ("Shanghai", "Shanghai", 14),
    ("Beijing", "Beijing", 13),
    ("Shenzhen", "Guangdong", 10),
    ("Guangzhou", "Guangdong", 9),
    ("Hangzhou", "Zhejiang", 7),
    ("Chengdu", "Sichuan", 7),
    ("Wuhan", "Hubei", 6),
    ("Nanjing", "Jiangsu", 6),
    ("Xi'an", "Shaanxi", 5),
    ("Chongqing", "Chongqing", 6),
    ("Suzhou", "Jiangsu", 5),
    ("Tianjin", "Tianjin", 4),
    ("Changsha", "Hunan", 4),
    ("Qingdao", "Shandong", 4),
]
OCCUPATIONS = [
    "engineer",
    "teacher",
    "designer",
    "student",
    "doctor",
    "sales",
    "accountant",
    "manager",
    "civil servant",
    "freelancer",
    "nurse",
    "lawyer",
]
EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "foxmail.com"]
PHONE_PREFIXES = ["13", "15", "17", "18", "19", "16", "14"]
TICKET_TOPICS = ["delivery", "defect", "billing", "how-to", "return"]
