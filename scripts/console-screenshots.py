#!/usr/bin/env python3
"""Screenshots of the console's pages for docs/console.md, taken from a demo store.

    .venv/bin/python scripts/console-screenshots.py [--db sqlite:///demo.db] [--out docs/console]

Without --db a small demo (2,000 customers) is built in a temporary file first. The script signs
in as a screenshot admin it adds to the store (screenshots@clm.invalid), serves the app in-process
and saves each page in Chinese and English, 1280 px and 390 px wide, with Debian's Chromium.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "login": "/login",
    "overview": "/",
    "customers": "/customers",
    "search": "/search?q=ping%20liu",
    "customer": "/customers/2",
    "settings": "/settings",
    "password": "/account/password",
    "imports": "/imports",
    "import-columns": "/imports/1",  # seed_imports sets the ids
    "import": "/imports/1",
    "segments": "/segments",
    "segment": "/segments/2",
    "segment-builder": "/segments/2/edit",
    "journeys": "/journeys",
    "journey": "/journeys/cart-abandonment",
    "journey-go-live": "/journeys/browse-abandonment/go-live",
    "templates": "/templates",
    "template": "/templates/cart-reminder",
    "outbox": "/outbox?state=not_sent",
    "campaigns": "/campaigns",
    "campaign": "/campaigns/cart-abandonment",
}
WIDTHS = {"wide": (1280, 860), "phone": (390, 844)}
LOCALES = {"zh": "zh-CN", "en": "en-US"}
EMAIL = "screenshots@clm.invalid"


def seed_journeys(engine) -> None:  # type: ignore[no-untyped-def]
    """The ready-made cart journey live for five days over 400 demo customers (a real SMTP server
    in this process takes its messages), 15% of them buying; the browse journey as a draft."""
    from datetime import timedelta

    from aiosmtpd.controller import Controller

    from clm.commerce.schemas import OrderIn, SpendIn
    from clm.commerce.service import ingest_order_batch, record_spend
    from clm.core.errors import NotFound
    from clm.core.timeutil import utcnow
    from clm.customers.service import list_customers
    from clm.events.schemas import validate_event
    from clm.events.service import ingest
    from clm.journeys.service import get_journey, import_journey, set_status, tick

    try:
        get_journey(engine, "cart-abandonment")
        return
    except NotFound:
        pass

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    smtp = Controller(Sink(), hostname="127.0.0.1", port=port)
    smtp.start()
    import os

    saved = {k: os.environ.get(k) for k in ("CLM_SMTP_HOST", "CLM_SMTP_PORT", "CLM_QUIET_HOURS")}
    os.environ.update(CLM_SMTP_HOST="127.0.0.1", CLM_SMTP_PORT=str(port), CLM_QUIET_HOURS="off")
    import_journey(engine, "cart-abandonment")
    import_journey(engine, "browse-abandonment")
    set_status(engine, "cart-abandonment", "live")
    people = [c for c in list_customers(engine, limit=2000) if c.external_id][:400]
    start = utcnow() - timedelta(days=5)
    carts = [
        validate_event({"event_id": f"shot-cart-{c.id}", "type": "add_to_cart", "external_id": c.external_id,
                        "timestamp": start + timedelta(minutes=i % 50), "sku": "SH-1", "name": "Red shoes"})
        for i, c in enumerate(people)
    ]  # fmt: skip
    ingest(engine, carts, actor="screenshots")
    tick(engine, start + timedelta(hours=1))
    buyers = people[::7]
    bought = start + timedelta(days=1, hours=8)
    orders = [
        OrderIn(order_id=f"shot-{c.id}", external_id=c.external_id, ordered_at=bought, status="completed",
                total=299.0, items=[{"sku": "SH-1", "unit_price": 299.0}])
        for c in buyers
    ]  # fmt: skip
    ingest_order_batch(engine, orders, actor="screenshots")  # each records its purchase event
    with engine.begin() as conn:
        record_spend(conn, [SpendIn(channel="email", campaign="cart-abandonment", period_start=start.date(),
                                    period_end=start.date(), amount=800.0)])  # fmt: skip
    for hours in (5, 30, 40, 60):
        tick(engine, start + timedelta(hours=hours))
    smtp.stop()
    for key, value in saved.items():  # the pages show the store's own settings
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def seed_imports(engine, actor: str) -> None:  # type: ignore[no-untyped-def]
    """Two imports by the screenshot admin: an order file with two bad rows, imported, and a
    member file from a Chinese system whose columns are still to be confirmed."""
    import os

    from clm.worker.import_jobs import claim_next, create_upload, import_dir, queue_job
    from clm.worker.import_preview import suggest_mapping
    from clm.worker.import_runner import run_job

    os.environ.setdefault("CLM_IMPORT_DIR", tempfile.mkdtemp())
    uploads = import_dir() / "uploads"
    orders = (
        "订单号,会员编号,下单时间,订单状态,商品编码,数量,单价\n"
        'SHOT-1,VIP-1001,2026/11/1 10:05,已完成,TEA-01,2,"￥1,299.00"\n'
        "SHOT-2,VIP-1002,2026/11/2 09:00,已付款,TEA-02,1,88元\n"
        "SHOT-3,VIP-1003,2026/11/3 08:00,待审核,TEA-03,1,58\n"
        "SHOT-4,VIP-1004,11月4日,已完成,TEA-04,1,58\n"
    )
    (uploads / "shot-orders.csv").write_text(orders, encoding="utf-8-sig")
    size = len(orders.encode()) + 3
    job = create_upload(engine, "orders", "十一月订单.csv", "shot-orders.csv", size, actor, None)
    mapping = suggest_mapping("orders", orders.splitlines()[0].split(","))
    queue_job(engine, job.id, mapping, None, None, actor)
    claimed = claim_next(engine)
    assert claimed is not None
    run_job(engine, claimed)
    members = (
        "会员编号,姓,名,手机号,生日,性别,城市,接收短信,注册时间,会员等级\n"
        "VIP-2001,张,伟,138 1234 5678,1990年5月12日,男,上海,是,2026/3/1 10:00,金卡\n"
        "VIP-2002,李,娜,+86 139 8765 4321,1987/2/29,女,杭州,否,2026/3/2 11:30,银卡\n"
        "VIP-2003,王,芳,电话待补,1995.8.8,女,北京,是,2026/3/5,普通\n"
    )
    (uploads / "shot-members.csv").write_bytes(members.encode("gb18030"))
    size = len(members.encode("gb18030"))
    waiting = create_upload(engine, "customers", "会员导出.csv", "shot-members.csv", size, actor, None)
    PAGES["import"], PAGES["import-columns"] = f"/imports/{job.id}", f"/imports/{waiting.id}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="the store to show (default: a new 2,000-customer demo)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "console"), help="folder for the PNG files")
    parser.add_argument("--pages", default=",".join(PAGES), help="which pages, comma-separated")
    args = parser.parse_args()
    url = args.db
    if url is None:
        url = f"sqlite:///{tempfile.mkdtemp()}/demo.db"
        demo = [sys.executable, "-m", "clm.cli", "--db", url, "demo", "--customers", "2000"]
        subprocess.run(demo, check=True)

    import uvicorn
    from playwright.sync_api import sync_playwright

    from clm.api import create_app
    from clm.auth.users import create_user, find_user
    from clm.core.errors import NotFound
    from clm.migrations import upgrade
    from clm.store.engine import make_engine

    engine = make_engine(url)
    upgrade(engine)
    password = secrets.token_urlsafe(12)
    try:
        find_user(engine, EMAIL)
        email = f"screenshots-{secrets.token_hex(3)}@clm.invalid"  # the old one's password is gone
    except NotFound:
        email = EMAIL
    create_user(engine, email, "admin", password, "截图", actor="screenshots")
    if {"imports", "import-columns", "import"} & set(args.pages.split(",")):
        seed_imports(engine, find_user(engine, email).actor)
    seeded = {"journeys", "journey", "journey-go-live", "outbox", "campaigns", "campaign"}
    if seeded & set(args.pages.split(",")):
        seed_journeys(engine)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = [p for p in args.pages.split(",") if p in PAGES]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for lang, locale in LOCALES.items():
            for width_name, (width, height) in WIDTHS.items():
                context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
                page = context.new_page()
                if "login" in wanted:
                    page.goto(base + "/login")
                    page.screenshot(path=out / f"login-{lang}-{width_name}.png")
                page.goto(base + "/login")
                page.fill("input[name=email]", email)
                page.fill("input[name=password]", password)
                page.click("button[type=submit].primary")
                page.wait_for_url(base + "/")
                for name in wanted:
                    if name == "login":
                        continue
                    page.goto(base + PAGES[name])
                    page.wait_for_load_state("networkidle")  # parts htmx loads (a template's preview)
                    # the whole page in one window, so the fixed side menu is as tall as the page
                    tall = page.evaluate("document.documentElement.scrollHeight")
                    page.set_viewport_size({"width": width, "height": max(height, tall)})
                    page.wait_for_timeout(1500)  # charts redraw at the new size, with an animation
                    page.screenshot(path=out / f"{name}-{lang}-{width_name}.png")
                    page.set_viewport_size({"width": width, "height": height})
                context.close()
        browser.close()
    server.should_exit = True
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
