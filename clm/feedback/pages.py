"""The survey answer page a link in an email or SMS opens: no login, the link is the key.
Served in English or Chinese (`?lang=zh`, or the browser's Accept-Language)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from clm.core.errors import Conflict, InvalidInput, NotFound
from clm.core.followups import refresh_customers
from clm.feedback.surveys import answer, open_invitation

router = APIRouter(include_in_schema=False)
_env = Environment(loader=PackageLoader("clm.feedback"), autoescape=select_autoescape(["html"]))

TEXT = {
    "en": {
        "title": "Your opinion",
        "hello": "Hello",
        "score": "Score",
        "low": "Not at all likely / very unhappy",
        "high": "Extremely likely / very happy",
        "comment": "Anything you would like to tell us? (optional)",
        "send": "Send",
        "thanks": "Thank you!",
        "thanks_more": "Your answer has been recorded.",
        "answered": "This survey has already been answered.",
        "answered_more": "Thank you: we have your answer, and each link can be used once.",
        "expired": "This survey link has expired.",
        "invalid": "This survey link is not valid.",
    },
    "zh": {
        "title": "您的意见",
        "hello": "您好",
        "score": "评分",
        "low": "完全不可能 / 非常不满意",
        "high": "非常可能 / 非常满意",
        "comment": "还有什么想告诉我们的吗?(可选)",
        "send": "提交",
        "thanks": "谢谢!",
        "thanks_more": "您的回答已记录。",
        "answered": "这份问卷已经回答过了。",
        "answered_more": "谢谢:我们已收到您的回答,每个链接只能使用一次。",
        "expired": "这个问卷链接已过期。",
        "invalid": "这个问卷链接无效。",
    },
}


def _lang(request: Request) -> str:
    asked = request.query_params.get("lang") or request.headers.get("accept-language", "")
    return "zh" if asked.lower().startswith("zh") else "en"


def _page(request: Request, state: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = _lang(request)
    html = _env.get_template("survey.html").render(lang=lang, t=TEXT[lang], state=state, **context)
    return HTMLResponse(html, status_code=status)


def _form(request: Request, token: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    try:
        found = open_invitation(request.app.state.engine, token)
    except NotFound:
        return _page(request, "invalid", 404)
    if found.state != "open":
        return _page(request, found.state, 409 if found.state == "answered" else 410)
    survey = found.survey
    question = survey.question_zh if _lang(request) == "zh" and survey.question_zh else survey.question_en
    return _page(
        request,
        "open",
        status,
        question=question,
        scale=survey.scale,
        first_name=found.first_name,
        error=error,
    )


@router.get("/s/{token}", response_class=HTMLResponse)
def survey_page(request: Request, token: str) -> HTMLResponse:
    return _form(request, token)


@router.post("/s/{token}", response_class=HTMLResponse)
def survey_answer(
    request: Request, token: str, score: str | None = Form(None), comment: str = Form("", max_length=5000)
) -> HTMLResponse:
    engine = request.app.state.engine
    try:
        value = None if score in (None, "") else int(score)
    except ValueError:
        return _form(request, token, error="choose a score", status=422)
    try:
        done = answer(engine, token, value, comment)
    except NotFound:
        return _page(request, "invalid", 404)
    except Conflict:
        found = open_invitation(engine, token)
        return _page(request, found.state, 409 if found.state == "answered" else 410)
    except InvalidInput as exc:
        return _form(request, token, error=exc.reason, status=422)
    refresh_customers(request.app.state, engine, [done.customer_id], {"event:survey_response"})
    return _page(request, "thanks")
