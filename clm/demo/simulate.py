"""Draw a synthetic shop's customers and their behaviour with NumPy (no database here).

Buying follows the modified BG/NBD story (Batislam, Denizel & Filiztekin 2007): while alive a
customer buys at their own Poisson rate λ ~ Gamma(r, α), and after each purchase, the first one
included, drops out with their own probability p ~ Beta(a, b) times their channel's factor (1 for
`search`). Plain BG/NBD (Fader, Hardie & Lee 2005) would keep every customer alive until a
repeat purchase; real one-time buyers do leave. Each customer's spending level follows
Gamma-Gamma (Fader, Hardie & Lee 2005b) and their baskets are built from the catalogue around it.
Browsing, carts, email engagement, surveys and tickets hang off that skeleton, so later
analytics have real structure to find and a known truth to be checked against.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from clm.demo.catalog import (
    ABROAD,
    ABROAD_EVERY,
    CAMPAIGNS,
    CATEGORIES,
    CHANNELS,
    CITIES,
    COMPLEMENTS,
    EMAIL_DOMAINS,
    GIVEN_NAMES,
    GIVEN_NAMES_ZH,
    OCCUPATIONS,
    PHONE_PREFIXES,
    PLACES_ZH,
    PRODUCTS,
    SURNAMES,
    SURNAMES_ZH,
    TICKET_TOPICS,
)

# Population parameters, per day (the truth the analytics issues should recover).
BGNBD_R, BGNBD_ALPHA = 0.9, 45.0  # λ ~ Gamma(shape r, rate α): mean 0.02 purchases/day
BGNBD_A, BGNBD_B = 0.9, 4.5  # p ~ Beta(a, b): mean 0.17 chance of dropping out after a purchase
# (the names keep "BGNBD": the process is the modified BG/NBD, which has the same four parameters)
GG_P, GG_Q, GG_GAMMA = 6.25, 3.74, 150.0  # spend: z ~ Gamma(p, rate ν), ν ~ Gamma(q, rate γ)
MAX_REPEATS = 200
EMAIL_EVERY_DAYS = 14
DUPLICATE_SHARE = 0.004

_SKUS = [p[0] for p in PRODUCTS]
_PRICE = {p[0]: p[3] for p in PRODUCTS}
_CATEGORY = {p[0]: p[2] for p in PRODUCTS}
_BY_CATEGORY = {c: [p[0] for p in PRODUCTS if p[2] == c] for c in CATEGORIES}
_CHANNEL_NAMES = list(CHANNELS)


@dataclass(frozen=True)
class DemoConfig:
    customers: int = 10_000
    seed: int = 42
    days: int = 730
    end: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    )

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


@dataclass
class Chunk:
    """Everything drawn for one slice of customers, ready to be written."""

    customers: list[dict[str, Any]]
    truth: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    # events as (customer index within chunk, type, channel, day offset, properties)
    events: list[tuple[int, str, str, float, dict[str, Any]]]
    acquisitions: dict[tuple[str, str], int]  # (channel, YYYY-MM) -> new customers


def simulate_chunk(config: DemoConfig, index: int, first: int, count: int) -> Chunk:
    """Customers first..first+count-1; the same (seed, index) always gives the same chunk."""
    rng = np.random.default_rng([config.seed, index])
    T = float(config.days)
    n = count

    # --- who they are and how they came
    shares = np.array([CHANNELS[c][0] for c in _CHANNEL_NAMES])
    channel_ix = rng.choice(len(_CHANNEL_NAMES), size=n, p=shares / shares.sum())
    acquired = T * rng.beta(1.6, 1.0, size=n)  # the shop grows: more recent sign-ups
    buy_share = np.array([CHANNELS[c][2] for c in _CHANNEL_NAMES])[channel_ix]
    dropout_mult = np.array([CHANNELS[c][3] for c in _CHANNEL_NAMES])[channel_ix]

    lam = rng.gamma(BGNBD_R, 1.0 / BGNBD_ALPHA, size=n)
    p = np.clip(rng.beta(BGNBD_A, BGNBD_B, size=n) * dropout_mult, 0.001, 0.97)
    nu = rng.gamma(GG_Q, 1.0 / GG_GAMMA, size=n)
    mean_value = GG_P / nu

    first_buy = acquired + rng.exponential(6.0, size=n)
    buyer = (rng.random(n) < buy_share) & (first_buy < T)

    # --- repeat purchases until dropout (flat arrays, one slice per customer): the dropout
    # follows purchase k (k = 1 the first) with probability p (1 - p)^(k-1), modified BG/NBD
    repeats = np.where(buyer, np.minimum(rng.geometric(p) - 1, MAX_REPEATS), 0)
    owner = np.repeat(np.arange(n), repeats)
    gaps = rng.exponential(1.0, size=owner.size) / lam[owner]
    starts = np.concatenate(([0], np.cumsum(repeats)[:-1]))
    elapsed = np.concatenate(([0.0], np.cumsum(gaps)))  # elapsed[k] = sum of gaps[:k]
    within = elapsed[1:] - np.repeat(elapsed[starts], repeats)
    repeat_times = first_buy[owner] + within
    last_lifetime = first_buy.copy()
    has_rep = repeats > 0
    last_lifetime[has_rep] = repeat_times[(starts + repeats - 1)[has_rep]]
    capped = repeats >= MAX_REPEATS
    dropped = buyer & ~capped & (last_lifetime <= T)
    interest = acquired + rng.exponential(30.0, size=n)  # prospects lose interest
    dropped_at = np.where(
        buyer, np.where(dropped, last_lifetime, np.nan), np.where(interest <= T, interest, np.nan)
    )
    alive_at_end = np.where(buyer, ~dropped, interest > T)

    keep = repeat_times <= T
    purchase_owner = np.concatenate((np.flatnonzero(buyer), owner[keep]))
    purchase_time = np.concatenate((first_buy[buyer], repeat_times[keep]))
    order_sort = np.lexsort((purchase_time, purchase_owner))
    purchase_owner, purchase_time = purchase_owner[order_sort], purchase_time[order_sort]
    values = rng.gamma(GG_P, 1.0 / nu[purchase_owner])

    active_until = np.where(
        buyer, np.minimum(np.nan_to_num(dropped_at, nan=T) + 21.0, T), np.minimum(interest, T)
    )

    profiles = _profiles(rng, config, first, n, channel_ix, acquired)
    preferred = [prof["attributes"]["preferred_category"] for prof in profiles]
    events: list[tuple[int, str, str, float, dict[str, Any]]] = []
    for i in range(n):
        ch = _CHANNEL_NAMES[channel_ix[i]]
        events.append(
            (
                i,
                "signup",
                ch,
                float(acquired[i]),
                {"utm_source": ch, "utm_campaign": profiles[i]["acquisition_campaign"]},
            )
        )
        events.append((i, "page_view", ch, float(acquired[i]) - 0.01, {"page": "/"}))

    orders = _orders(
        rng, config, first, purchase_owner, purchase_time, values, preferred, channel_ix, events, p
    )
    _browsing(rng, n, acquired, active_until, lam, preferred, events)
    _email_and_sms(rng, config, n, acquired, active_until, profiles, events)
    _other_touches(rng, n, acquired, active_until, channel_ix, buyer, first_buy, events)
    duplicates = _duplicates(rng, config, first, profiles, acquired, events)

    observed = config.end
    truth = [
        {
            "customer_index": i,
            "segment": "buyer" if buyer[i] else "prospect",
            "purchase_rate": float(lam[i]),
            "dropout_prob": float(p[i]),
            "mean_order_value": float(mean_value[i]),
            "acquired_at": config.start + timedelta(days=float(acquired[i])),
            "dropped_out_at": None
            if np.isnan(dropped_at[i])
            else config.start + timedelta(days=float(dropped_at[i])),
            "alive_at_end": bool(alive_at_end[i]),
            "observed_until": observed,
            "duplicate_of": None,
        }
        for i in range(n)
    ]
    truth += duplicates
    acquisitions: dict[tuple[str, str], int] = {}
    for i in range(n):
        month = (config.start + timedelta(days=float(acquired[i]))).strftime("%Y-%m")
        key = (_CHANNEL_NAMES[channel_ix[i]], month)
        acquisitions[key] = acquisitions.get(key, 0) + 1
    return Chunk(profiles + [d.pop("profile") for d in duplicates], truth, orders, events, acquisitions)


def _ascii(name: str) -> str:
    """A name as an email address writes it: Müller → Muller, Chloé → Chloe."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()


def _profiles(
    rng: np.random.Generator,
    config: DemoConfig,
    first: int,
    n: int,
    channel_ix: np.ndarray,
    acquired: np.ndarray,
) -> list[dict[str, Any]]:
    surname = rng.integers(len(SURNAMES), size=n)
    given = rng.integers(len(GIVEN_NAMES), size=n)
    gender = rng.random(n) < 0.52
    age_days = rng.uniform(18 * 365.25, 70 * 365.25, size=n)
    weights = np.array([c[2] for c in CITIES], dtype=float)
    city = rng.choice(len(CITIES), size=n, p=weights / weights.sum())
    occupation = rng.integers(len(OCCUPATIONS), size=n)
    domain = rng.integers(len(EMAIL_DOMAINS), size=n)
    email_ok = rng.random(n) < 0.8
    sms_ok = rng.random(n) < 0.55
    category = rng.integers(len(CATEGORIES), size=n)
    campaign_pick = rng.random(n)
    out = []
    for i in range(n):
        idx = first + i
        ch = _CHANNEL_NAMES[channel_ix[i]]
        campaigns = CAMPAIGNS[ch]
        g, s = GIVEN_NAMES[given[i]], SURNAMES[surname[i]]
        # names and places as the customers write them: in characters (张伟, 上海), and one in
        # ABROAD_EVERY abroad in Latin letters (decided by the index: the random draws stay as they were)
        name = (GIVEN_NAMES_ZH[given[i]], SURNAMES_ZH[surname[i]])
        place = (PLACES_ZH[CITIES[city[i]][0]], PLACES_ZH[CITIES[city[i]][1]], "CN", "Asia/Shanghai")
        if idx % ABROAD_EVERY == ABROAD_EVERY - 1:
            her, his, s, town, region, country, zone = ABROAD[(idx // ABROAD_EVERY) % len(ABROAD)]
            g = her if gender[i] else his
            name, place = (g, s), (town, region, country, zone)
        out.append(
            {
                "external_id": f"D{idx:07d}",
                "email": f"{_ascii(g)}.{_ascii(s)}{idx}@{EMAIL_DOMAINS[domain[i]]}".lower(),
                "phone": f"+86{PHONE_PREFIXES[idx % len(PHONE_PREFIXES)]}{idx:09d}",
                "first_name": name[0],
                "last_name": name[1],
                "birthday": (config.end - timedelta(days=float(age_days[i]))).date(),
                "gender": "female" if gender[i] else "male",
                "city": place[0],
                "region": place[1],
                "country": place[2],
                "timezone": place[3],
                "occupation": OCCUPATIONS[occupation[i]],
                "acquisition_channel": ch,
                "acquisition_campaign": campaigns[int(campaign_pick[i] * len(campaigns))],
                "first_seen_at": config.start + timedelta(days=float(acquired[i]) - 0.01),
                "attributes": {"preferred_category": CATEGORIES[category[i]]},
                "consents": {"email": bool(email_ok[i]), "sms": bool(sms_ok[i])},
                "consent_source": "signup form",
            }
        )
    return out


def _orders(
    rng: np.random.Generator,
    config: DemoConfig,
    first: int,
    owner: np.ndarray,
    times: np.ndarray,
    values: np.ndarray,
    preferred: list[str],
    channel_ix: np.ndarray,
    events: list[tuple[int, str, str, float, dict[str, Any]]],
    dropout: np.ndarray,
) -> list[dict[str, Any]]:
    m = owner.size
    status_draw = rng.random(m)
    extra = rng.random((m, 3))
    pick = rng.random((m, 3))
    refund_delay = rng.uniform(2, 20, size=m)
    survey = rng.random(m)
    ticket = rng.random(m)
    app_share = rng.random(m)
    nps_noise = rng.normal(0, 1.8, size=m)
    ticket_delay = rng.uniform(0.5, 10, size=m)
    ticket_hours = rng.exponential(20, size=m)
    csat_noise = rng.normal(0, 0.8, size=m)
    orders = []
    for j in range(m):
        i = int(owner[j])
        t = float(times[j])
        skus = _basket(preferred[i], float(values[j]), extra[j], pick[j])
        discount = 1.0 if extra[j, 2] < 0.7 else 0.9  # some orders use a 10% coupon
        total = round(sum(_PRICE[s] for s in skus) * discount, 2)
        status = (
            "refunded" if status_draw[j] < 0.04 else "cancelled" if status_draw[j] < 0.06 else "completed"
        )
        if status == "refunded" and t + float(refund_delay[j]) >= config.days:
            status = "completed"  # the refund would fall after the end of the simulation
        offline = _CHANNEL_NAMES[channel_ix[i]] == "offline" and app_share[j] < 0.6
        channel = "offline" if offline else "app" if app_share[j] < 0.3 else "web"
        order_id = f"O{config.seed}-{first + i}-{j}"
        orders.append(
            {
                "customer_index": i,
                "order_id": order_id,
                "ordered_at": t,
                "status": status,
                "refunded_at": t + float(refund_delay[j]) if status == "refunded" else None,
                "total": total,
                "channel": channel,
                "items": [(s, round(_PRICE[s] * discount, 2)) for s in skus],
            }
        )
        if channel != "offline":  # the path to the purchase
            events.append(
                (
                    i,
                    "product_view",
                    channel,
                    t - 0.04,
                    {"sku": skus[0], "category": _CATEGORY[skus[0]]},
                )
            )
            events.append((i, "add_to_cart", channel, t - 0.03, {"sku": skus[0]}))
            events.append((i, "checkout_started", channel, t - 0.01, {"value": total}))
        if status == "completed" and survey[j] < 0.25:
            score = int(np.clip(round(9.3 - 7.0 * dropout[i] + nps_noise[j]), 0, 10))
            events.append(
                (
                    i,
                    "survey_response",
                    "email",
                    t + 4.0,
                    {"survey": "nps", "score": score, "order_id": order_id},
                )
            )
        if ticket[j] < 0.06:
            opened = t + float(ticket_delay[j])
            topic = TICKET_TOPICS[j % len(TICKET_TOPICS)]
            props = {
                "ticket_id": f"T-{order_id}",
                "topic": topic,
                "priority": "high" if topic == "defect" else "normal",
            }
            events.append((i, "ticket_opened", "support", opened, props))
            events.append((i, "ticket_resolved", "support", opened + float(ticket_hours[j]) / 24.0, props))
            if survey[j] > 0.5:
                csat = int(np.clip(round(4.3 - 2.0 * dropout[i] + csat_noise[j]), 1, 5))
                events.append(
                    (
                        i,
                        "survey_response",
                        "email",
                        opened + float(ticket_hours[j]) / 24.0 + 0.2,
                        {"survey": "csat", "score": csat, "ticket_id": props["ticket_id"]},
                    )
                )
    return orders


def _basket(category: str, spend: float, extra: np.ndarray, pick: np.ndarray) -> list[str]:
    """A basket whose main item fits the customer's spending level (the Gamma-Gamma draw)."""
    pool = _BY_CATEGORY[category] if pick[0] < 0.7 else _SKUS
    log_gap = np.abs(np.log([_PRICE[s] for s in pool]) - np.log(max(spend, 1.0)))
    nearest = np.argsort(log_gap)
    skus = [pool[int(nearest[0 if pick[1] < 0.65 else min(1, len(pool) - 1)])]]
    complements = COMPLEMENTS.get(skus[0], [])
    if complements and extra[0] < 0.45:
        skus.append(complements[int(pick[1] * len(complements))])
    if extra[1] < 0.15:
        other = _SKUS[int(pick[2] * len(_SKUS))]
        if other not in skus:
            skus.append(other)
    return skus


def _browsing(
    rng: np.random.Generator,
    n: int,
    acquired: np.ndarray,
    active_until: np.ndarray,
    lam: np.ndarray,
    preferred: list[str],
    events: list[tuple[int, str, str, float, dict[str, Any]]],
) -> None:
    window = np.maximum(active_until - acquired, 0.0)
    sessions = rng.poisson(window * (0.03 + 1.5 * lam))
    owner = np.repeat(np.arange(n), sessions)
    when = acquired[owner] + rng.random(owner.size) * window[owner]
    views = rng.poisson(1.2, size=owner.size)
    cart = rng.random(owner.size)
    pick = rng.random(owner.size)
    app = rng.random(owner.size) < 0.35
    for k in range(owner.size):
        i, t = int(owner[k]), float(when[k])
        channel = "app" if app[k] else "web"
        events.append((i, "page_view", channel, t, {"page": "/"}))
        pool = _BY_CATEGORY[preferred[i]] if pick[k] < 0.7 else _SKUS
        sku = pool[int(pick[k] * 997) % len(pool)]
        for v in range(int(views[k])):
            events.append(
                (
                    i,
                    "product_view",
                    channel,
                    t + 0.002 * (v + 1),
                    {"sku": sku, "category": _CATEGORY[sku]},
                )
            )
        if cart[k] < 0.10:
            events.append((i, "add_to_cart", channel, t + 0.01, {"sku": sku}))
            if cart[k] < 0.03:
                events.append((i, "checkout_started", channel, t + 0.015, {"value": _PRICE[sku]}))


def _email_and_sms(
    rng: np.random.Generator,
    config: DemoConfig,
    n: int,
    acquired: np.ndarray,
    active_until: np.ndarray,
    profiles: list[dict[str, Any]],
    events: list[tuple[int, str, str, float, dict[str, Any]]],
) -> None:
    email_ok = np.array([p["consents"]["email"] for p in profiles])
    sends = np.where(email_ok, np.floor((config.days - acquired) / EMAIL_EVERY_DAYS).astype(int), 0)
    owner = np.repeat(np.arange(n), sends)
    starts = np.concatenate(([0], np.cumsum(sends)[:-1]))
    k = np.arange(owner.size) - np.repeat(starts, sends)
    campaign_day = np.ceil(acquired[owner] / EMAIL_EVERY_DAYS + k + 1e-9) * EMAIL_EVERY_DAYS
    active = campaign_day <= active_until[owner]
    opened = rng.random(owner.size) < np.where(active, 0.32, 0.04)
    clicked = opened & (rng.random(owner.size) < 0.3)
    delay = rng.exponential(0.3, size=owner.size)
    for j in np.flatnonzero(opened):
        i, t = int(owner[j]), float(campaign_day[j] + delay[j])
        if t >= config.days:
            continue
        campaign = f"newsletter-{int(campaign_day[j] // EMAIL_EVERY_DAYS):03d}"
        events.append((i, "email_open", "email", t, {"campaign": campaign}))
        if clicked[j]:
            events.append((i, "email_click", "email", t + 0.01, {"campaign": campaign, "url": "/deals"}))
    sms_ok = np.array([p["consents"]["sms"] for p in profiles])
    clicks = rng.poisson(np.where(sms_ok, (active_until - acquired) / 60.0 * 0.15, 0.0))
    for c in np.flatnonzero(clicks):
        for t in acquired[c] + rng.random(int(clicks[c])) * (active_until[c] - acquired[c]):
            events.append((int(c), "sms_click", "sms", float(t), {"campaign": "flash-sale"}))


def _other_touches(
    rng: np.random.Generator,
    n: int,
    acquired: np.ndarray,
    active_until: np.ndarray,
    channel_ix: np.ndarray,
    buyer: np.ndarray,
    first_buy: np.ndarray,
    events: list[tuple[int, str, str, float, dict[str, Any]]],
) -> None:
    window = np.maximum(active_until - acquired, 0.0)
    names = np.array(_CHANNEL_NAMES)[channel_ix]
    social = rng.poisson(np.where(names == "social", window / 45.0, window / 400.0))
    visits = rng.poisson(np.where(names == "offline", window / 50.0, 0.0))
    draws = rng.random((n, 3))
    for i in range(n):
        a, w = float(acquired[i]), float(window[i])
        for t in a + rng.random(int(social[i])) * w:
            events.append((i, "social_interaction", "social", float(t), {"action": "like"}))
        for t in a + rng.random(int(visits[i])) * w:
            events.append((i, "offline_visit", "offline", float(t), {"store": "flagship"}))
        if buyer[i] and draws[i, 0] < 0.15:
            events.append((i, "inquiry", "support", float(first_buy[i]) - 0.5, {"topic": "product question"}))
        if draws[i, 1] < 0.05:
            events.append((i, "sales_call", "sales", a + draws[i, 2] * w, {"outcome": "interested"}))
        if names[i] == "referral" and draws[i, 2] < 0.3:
            events.append((i, "trial_started", "app", a + 0.02, {"plan": "care-plus"}))


def _duplicates(
    rng: np.random.Generator,
    config: DemoConfig,
    first: int,
    profiles: list[dict[str, Any]],
    acquired: np.ndarray,
    events: list[tuple[int, str, str, float, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """A few people sign up twice with another email: suspected-duplicate review should find them."""
    n = len(profiles)
    chosen = np.flatnonzero(rng.random(n) < DUPLICATE_SHARE)
    out = []
    for k, i in enumerate(chosen):
        base = profiles[i]
        dup_index = n + k
        when = min(float(acquired[i]) + float(rng.uniform(5, 200)), config.days - 1.0)
        profile = {
            **base,
            "external_id": None,
            "email": f"{base['first_name']}.{base['last_name']}{first + i}@corp-mail.cn".lower(),
            "phone": None,
            "anonymous_id": f"dev-{config.seed}-{first + i}",
            "first_seen_at": config.start + timedelta(days=when),
            "attributes": dict(base["attributes"]),
            "consents": {},
        }
        events.append((dup_index, "page_view", "web", when, {"page": "/"}))
        events.append((dup_index, "signup", "web", when + 0.001, {"utm_source": "search"}))
        out.append(
            {
                "customer_index": dup_index,
                "segment": "duplicate",
                "purchase_rate": 0.0,
                "dropout_prob": 1.0,
                "mean_order_value": 0.0,
                "acquired_at": config.start + timedelta(days=when),
                "dropped_out_at": None,
                "alive_at_end": False,
                "observed_until": config.end,
                "duplicate_of": int(i),
                "profile": profile,
            }
        )
    return out


def monthly_spend(acquisitions: dict[tuple[str, str], int], rng: np.random.Generator) -> list[dict[str, Any]]:
    """Spend per channel and month: new customers × the channel's cost, with some noise."""
    rows = []
    for (channel, month), count in sorted(acquisitions.items()):
        year, mon = map(int, month.split("-"))
        start = date(year, mon, 1)
        end = (date(year + mon // 12, mon % 12 + 1, 1)) - timedelta(days=1)
        amount = count * CHANNELS[channel][1] * float(rng.lognormal(0.0, 0.12))
        rows.append(
            {
                "channel": channel,
                "period_start": start,
                "period_end": end,
                "amount": round(amount, 2),
            }
        )
    return rows
