"""The console's side menu: one entry per domain, each with the permission it needs and, until
its page is built, the commands that do the job today."""

from __future__ import annotations

from dataclasses import dataclass

from clm.web.i18n import N_


@dataclass(frozen=True)
class Section:
    key: str
    label: str  # English msgid; translated where shown
    path: str
    permission: str
    icon: str  # an SVG path drawn in a 24×24 box
    blurb: str = ""
    commands: tuple[str, ...] = ()
    built: bool = False


SECTIONS = (
    Section(
        "overview",
        N_("Overview"),
        "/",
        "read",
        "M4 13h6V4H4zm0 7h6v-5H4zm10 0h6v-9h-6zm0-16v5h6V4z",
        N_("Lifecycle KPIs, the stage funnel and where customers move."),
        ("clm kpi --from 2026-01-01 --to 2026-06-30", "clm funnel"),
        built=True,
    ),
    Section(
        "customers",
        N_("Customers"),
        "/customers",
        "read",
        "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 10v-2a6 6 0 0 1 12 0v2z"
        "m15-10a3 3 0 1 0 0-6m1 16h4v-2a5 5 0 0 0-4-5",
        N_("Every customer, searchable and filterable, and the 360° view of each."),
        (
            "clm import customers customers.csv",
            "clm customers find --email ann@example.com",
            "clm customers show 1",
        ),
        built=True,
    ),
    Section(
        "segments",
        N_("Segments"),
        "/segments",
        "read",
        "M12 3a9 9 0 1 0 9 9h-9z M14 1v8h8a8 8 0 0 0-8-8z",
        N_("Groups of customers defined by conditions, kept up to date."),
        ("clm segments list", "clm segments builtins", 'clm segments preview "orders >= 2"'),
        built=True,
    ),
    Section(
        "journeys",
        N_("Journeys"),
        "/journeys",
        "read",
        "M5 6a2 2 0 1 0 0-4 2 2 0 0 0 0 4zm14 16a2 2 0 1 0 0-4 2 2 0 0 0 0 4z"
        "M5 6v5a4 4 0 0 0 4 4h6a4 4 0 0 1 4 4",
        N_("Automatic messages that follow what customers do."),
        ("clm journeys presets", "clm journeys list", "clm outbox list"),
        built=True,
    ),
    Section(
        "messages",
        N_("Messages"),
        "/templates",
        "read",
        "M3 5h18v14H3zm0 0 9 7 9-7",
        N_("Message templates with a live preview, and the outbox of messages on their way out."),
        ("clm templates list", "clm templates preview welcome 1", "clm outbox list"),
        built=True,
    ),
    Section(
        "campaigns",
        N_("Campaigns"),
        "/campaigns",
        "read",
        "M3 11v2l13 5V6zm13-5 5-2v16l-5-2M7 14v5h3v-4",
        N_("Results, A/B tests and return on investment."),
        ("clm campaigns roi", "clm experiments report"),
        built=True,
    ),
    Section(
        "loyalty",
        N_("Loyalty"),
        "/loyalty",
        "read",
        "m12 3 2.8 5.7 6.2.9-4.5 4.4 1 6.2L12 17.3 6.5 20.2l1-6.2L3 9.6l6.2-.9z",
        N_("Points, tiers and perks."),
        ("clm loyalty programme", "clm loyalty balance 1"),
    ),
    Section(
        "feedback",
        N_("Feedback"),
        "/feedback",
        "read",
        "M4 4h16v12H8l-4 4z",
        N_("Surveys, NPS and CSAT, and what customers wrote."),
        ("clm surveys list", "clm surveys results after-order"),
    ),
    Section(
        "service",
        N_("Service"),
        "/service",
        "read",
        "M4 14v-2a8 8 0 0 1 16 0v2M4 14h3v6H4zm13 0h3v6h-3z",
        N_("Support tickets and follow-up tasks."),
        ("clm tickets list", "clm tasks list"),
    ),
    Section(
        "imports",
        N_("Imports"),
        "/imports",
        "read",
        "M12 3v12m0 0-4-4m4 4 4-4M4 17v3h16v-3",
        N_("Customers, events, orders and products from CSV, JSON Lines or Excel files."),
        ("clm import customers customers.csv", "clm import orders 订单.xlsx"),
        built=True,
    ),
    Section(
        "settings",
        N_("Settings"),
        "/settings",
        "admin",
        "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm8-3 2-1-1-3-2 .3-1.5-1.5L17.8 5l-3-1-1 2h-3.6l-1-2-3 1"
        " .3 1.8L5 8.3 3 8 2 11l2 1-2 1 1 3 2-.3 1.5 1.5L6.2 19l3 1 1-2h3.6l1 2 3-1-.3-1.8 1.5-1.5 2 .3 1-3z",
        N_("Users, API keys, channels and the stage model."),
        ("clm users list", "clm apikey list", "clm stages show"),
        built=True,
    ),
)

BY_KEY = {s.key: s for s in SECTIONS}
