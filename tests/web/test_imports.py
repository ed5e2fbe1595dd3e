"""The imports pages: upload (streamed to disk), columns with a preview read as the import reads
it, the background job and its counters, the rejections download, permissions and the audit."""

from __future__ import annotations

import codecs
import re
import time

import pytest
from sqlalchemy import select

from clm.auth.tables import audit_log
from clm.commerce.service import get_order
from clm.worker import import_jobs
from clm.worker.import_jobs import claim_next, create_upload, get_job, queue_job
from clm.worker.import_preview import suggest_mapping
from clm.worker.import_runner import ImportRunner
from tests.web.conftest import sign_in

ORDERS = (
    "订单号,会员编号,下单时间,订单状态,商品编码,数量,单价\n"
    'A1,m1,2026/11/1 10:05,已完成,SKU1,2,"￥1,299.00"\n'
    "A2,m2,2026/11/2 09:00,已付款,SKU2,1,88元\n"
    "A3,m3,2026/11/3 08:00,待审核,SKU3,1,5\n"  # a status no shop word means: rejected
    "A4,m4,不是时间,已完成,SKU4,1,5\n"  # no time: rejected
)


@pytest.fixture(autouse=True)
def import_folder(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CLM_IMPORT_DIR", str(tmp_path / "imports"))
    return tmp_path / "imports"


def wait_until_finished(engine, job_id: int, seconds: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = get_job(engine, job_id)
        if job.status in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"import {job_id} still {get_job(engine, job_id).status}")


def upload(client, token: str, name: str, body: bytes, kind: str = "orders", header: bool = True):  # type: ignore[no-untyped-def]
    headers = {"X-CSRF-Token": token} if header else {}
    data = {"kind": kind} if header else {"kind": kind, "csrf_token": token}
    return client.post(
        "/imports/upload", data=data, files={"file": (name, body)}, headers=headers, follow_redirects=False
    )


def job_id_of(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, response.text[:500]
    return int(re.fullmatch(r"/imports/(\d+)", response.headers["location"]).group(1))  # type: ignore[union-attr]


def test_a_marketer_imports_a_gbk_order_file_with_bad_rows_and_gets_them_back(client, team, engine):
    token = sign_in(client, "mark")
    job_id = job_id_of(upload(client, token, "订单.csv", ORDERS.encode("gb18030")))

    page = client.get(f"/imports/{job_id}").text  # the columns, named in Chinese, matched by their names
    for column, field in (("订单号", "order_id"), ("下单时间", "ordered_at"), ("单价", "unit_price")):
        assert re.search(rf'name="map:{column}".*?<option value="{field}" selected', page, re.S), column
    # the preview reads the cells as the import does: ￥1,299.00, 已完成, a time in the store's zone
    form = {"csrf_token": token, "encoding": "gb18030"} | {
        f"map:{c}": f
        for c, f in suggest_mapping(
            "orders", ["订单号", "会员编号", "下单时间", "订单状态", "商品编码", "数量", "单价"]
        ).items()
    }
    preview = client.post(f"/imports/{job_id}/preview", data=form).text
    assert "1299.0" in preview and "completed" in preview
    assert "2026年11月1日 10:05:00" in preview
    assert "&#39;待审核&#39; is not an order status" in preview
    assert preview.count("将被导入") == 2 and preview.count("将被拒绝") == 2

    response = client.post(f"/imports/{job_id}/start", data=form, follow_redirects=False)
    assert response.status_code == 303
    job = wait_until_finished(engine, job_id)
    assert job.status == "done", job.error
    assert (job.rows, job.accepted, job.rejected, job.duplicates) == (4, 2, 2, 0)
    assert job.counters["orders_created"] == 2 and job.by == "mark@example.com"
    assert get_order(engine, "A1").total == 2598.0  # 2 × ￥1,299.00
    assert not job.upload_path.exists()  # the upload goes once imported; the rejections stay

    shown = client.get(f"/imports/{job_id}/progress").text
    assert 'id="count-accepted">2<' in shown and 'id="count-rejected">2<' in shown
    assert "hx-trigger" not in shown  # finished: the page stops asking

    download = client.get(f"/imports/{job_id}/rejections.csv")
    assert download.status_code == 200 and download.content.startswith(codecs.BOM_UTF8)
    lines = download.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "rejected_line,rejection_reason,订单号,会员编号,下单时间,订单状态,商品编码,数量,单价"
    assert lines[1].startswith("4,") and lines[1].endswith(",A3,m3,2026/11/3 08:00,待审核,SKU3,1,5")
    assert lines[2].startswith("5,") and "不是时间" in lines[2]

    # fix one row, import the rejections file again (its own columns are skipped), see it stored
    fixed = "\n".join([lines[0], lines[1].replace("待审核", "已完成")]) + "\n"
    again = job_id_of(upload(client, token, "订单.rejections.csv", codecs.BOM_UTF8 + fixed.encode()))
    page = client.get(f"/imports/{again}").text
    assert 'name="map:rejection_reason"' not in page or "rejection_reason" in page
    form2 = {"csrf_token": token} | {k: v for k, v in form.items() if k.startswith("map:")}
    assert client.post(f"/imports/{again}/start", data=form2, follow_redirects=False).status_code == 303
    job2 = wait_until_finished(engine, again)
    assert (job2.status, job2.accepted, job2.rejected) == ("done", 1, 0)
    assert get_order(engine, "A3").status == "completed"

    with engine.connect() as conn:
        audit = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.entity_id).where(
                audit_log.c.entity == "import_job"
            )
        ).all()
    actions = {(a.action, a.entity_id) for a in audit}
    assert {
        ("import.upload", str(job_id)),
        ("import.start", str(job_id)),
        ("import.finish", str(job_id)),
    } <= actions
    assert ("import.rejections_download", str(job_id)) in actions
    assert {a.actor for a in audit} == {f"user:{team.ids['mark']}:mark@example.com"}
    listing = client.get("/imports").text
    assert "订单.rejections.csv" in listing and "mark@example.com" in listing


def test_a_form_posted_without_script_is_imported_too(client, team, engine):
    token = sign_in(client, "alice")
    body = "手机号,生日,接收短信,城市\n138 1234 5678,1990年5月12日,是,上海\n".encode()
    job_id = job_id_of(upload(client, token, "会员.csv", body, kind="customers", header=False))
    page = client.get(f"/imports/{job_id}").text
    assert "1990年5月12日" in page and "+8613812345678" in page  # read as the import reads them
    start = {
        "csrf_token": token,
        "map:手机号": "phone",
        "map:生日": "birthday",
        "map:接收短信": "consent_sms",
    }
    assert client.post(f"/imports/{job_id}/start", data=start, follow_redirects=False).status_code == 303
    job = wait_until_finished(engine, job_id)
    assert (job.status, job.accepted, job.counters["customers_created"]) == ("done", 1, 1)


def test_missing_required_columns_and_bad_files_are_said_on_the_page(client, team, engine):
    token = sign_in(client, "mark")
    forgotten = job_id_of(upload(client, token, "old.csv", b"sku\nP1\n", kind="products"))
    with engine.begin() as conn:  # uploaded eight days ago, its columns never confirmed
        conn.execute(
            import_jobs.import_jobs.update()
            .where(import_jobs.import_jobs.c.id == forgotten)
            .values(created_at=import_jobs.utcnow() - import_jobs.STALE_UPLOAD * 8 / 7)
        )
    response = upload(client, token, "events.xls", b"\xd0\xcf\x11\xe0", kind="events")
    assert response.status_code == 422 and "old Excel format" in response.text
    job_id = job_id_of(upload(client, token, "e.csv", b"what,when\npage_view,2026-11-01\n", kind="events"))
    response = client.post(f"/imports/{job_id}/start", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 422 and 'id="missing-fields"' in response.text
    assert get_job(engine, job_id).status == "uploaded"
    assert get_job(engine, forgotten).status == "discarded"  # dropped at the next upload
    assert not get_job(engine, forgotten).upload_path.exists()
    assert client.post(f"/imports/{job_id}/discard", data={"csrf_token": token}).status_code == 200
    assert get_job(engine, job_id).status == "discarded"


@pytest.mark.parametrize("who", ["ana", "vic"])
def test_analysts_and_viewers_see_the_imports_but_cannot_import(client, team, engine, who):
    token = sign_in(client, who)
    page = client.get("/imports")
    assert page.status_code == 200 and "upload-form" not in page.text
    assert upload(client, token, "o.csv", ORDERS.encode()).status_code == 403
    assert upload(client, token, "o.csv", ORDERS.encode(), header=False).status_code == 403
    assert not import_jobs.list_jobs(engine)


def test_an_accepted_import_survives_a_server_that_stopped(engine, team, import_folder):
    """A job claimed by a runner that died (its lease ran out) is imported by the next one."""
    folder = import_jobs.import_dir() / "uploads"
    (folder / "x.csv").write_text("sku,name,price\nP1,茶杯,￥25.00\n", encoding="utf-8")
    job = create_upload(engine, "products", "x.csv", "x.csv", 30, "user:1:a@example.com", None)
    queue_job(engine, job.id, {}, None, None, "user:1:a@example.com")
    claimed = claim_next(engine)  # a runner takes it and dies at once
    assert claimed is not None and claimed.status == "running"
    assert claim_next(engine) is None  # held by its lease
    with engine.begin() as conn:
        conn.execute(
            import_jobs.import_jobs.update().values(lease_until=import_jobs.utcnow() - import_jobs.LEASE)
        )
    ImportRunner(engine).resume()  # what a restarted server does
    done = wait_until_finished(engine, job.id)
    assert (done.status, done.accepted, done.attempts) == ("done", 1, 2)


def test_clm_worker_runs_a_queued_import(engine, db_url, import_folder):
    from clm.cli import main

    folder = import_jobs.import_dir() / "uploads"
    (folder / "p.jsonl").write_text('{"货号": "P9", "品名": "茶壶", "售价": "￥1,299.00", "上架": "是"}\n')
    job = create_upload(engine, "products", "p.jsonl", "p.jsonl", 60, "user:1:a@example.com", None)
    queue_job(
        engine, job.id, {"货号": "sku", "品名": "name", "售价": "price", "上架": "active"}, None, None, "x"
    )
    assert main(["--db", db_url, "worker", "--once", "--no-journeys"]) == 0
    done = get_job(engine, job.id)
    assert (done.status, done.accepted, done.counters) == ("done", 1, {"products": 1})


def _rss() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) << 10 for line in status if line.startswith("VmRSS:"))


def test_a_large_upload_goes_to_disk_not_into_memory(server, team, engine, tmp_path):
    """128 MB through the real server (uvicorn, in this process): memory grows by a few MB."""
    import threading

    import httpx

    big = tmp_path / "big.csv"
    line = b"13800000000,2026/11/1 10:05,\xe6\x98\xaf,\xe4\xb8\x8a\xe6\xb5\xb7\n" * 1024
    with big.open("wb") as out:
        out.write("手机号,注册时间,接收短信,城市\n".encode())
        while out.tell() < 128 << 20:
            out.write(line)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, _rss())

    with httpx.Client(base_url=server, timeout=120) as client:
        token = sign_in(client, "mark")
        before = _rss()
        sampler = threading.Thread(target=sample)
        sampler.start()
        with big.open("rb") as sent:
            response = client.post(
                "/imports/upload",
                data={"kind": "customers"},
                files={"file": ("big.csv", sent, "text/csv")},
                headers={"X-CSRF-Token": token},
                follow_redirects=False,
            )
        done.set()
        sampler.join()
    job = get_job(engine, job_id_of(response))
    assert job.size == big.stat().st_size and job.upload_path.stat().st_size == job.size
    assert peak - before < 48 << 20, f"memory grew by {(peak - before) >> 20} MB"


def test_a_column_left_out_is_not_imported(client, team, engine):
    """An export's column CLM has no field for (an order file's 商品名称) is left out, not refused."""
    from clm.core import files

    if not hasattr(files, "SKIP"):  # the readers' `--map COLUMN=-`, from the ingestion work
        pytest.skip("clm.core.files cannot leave a column out yet")
    token = sign_in(client, "mark")
    header = ["订单号", "会员编号", "下单时间", "商品编码", "商品名称", "数量", "单价"]
    body = (",".join(header) + "\nC1,m1,2026/11/1 10:05,T1,龙井茶,1,58\n").encode()
    job_id = job_id_of(upload(client, token, "o.csv", body))
    form = {"csrf_token": token} | {f"map:{c}": f for c, f in suggest_mapping("orders", header).items()}
    kept = client.post(f"/imports/{job_id}/preview", data=form | {"map:商品名称": ""}).text
    assert "将被拒绝" in kept and "将被导入" not in kept  # an order takes no such field
    left_out = client.post(f"/imports/{job_id}/preview", data=form | {"map:商品名称": "-"}).text
    assert "将被导入" in left_out and "将被拒绝" not in left_out
    client.post(f"/imports/{job_id}/start", data=form | {"map:商品名称": "-"}, follow_redirects=False)
    job = wait_until_finished(engine, job_id)
    assert (job.status, job.accepted, job.mapping["商品名称"]) == ("done", 1, "-")
    assert get_order(engine, "C1").total == 58.0
