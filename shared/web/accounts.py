"""The players' accounts on the web (README "Web pages"): sign up, log in and out, and ``/me`` (the
account, mail, password, sessions, export, deletion); plus the ``/boards`` index.

A Blueprint (``wsgi.create_app`` registers it). Every action is an operation of the registry run
through ``shared.dispatch.run``, with the browser's session as the caller, so every check and
limit is the API's own (login lockout, registrations per address, mailbox limits, ownership).

- **Session**: the cookie ``ssm_session`` holds a player session token from ``session.login``
  (counted in SESSIONS_PER_PLAYER_MAX, revocable, listed by ``session.list``); HttpOnly,
  SameSite=Lax, Secure when WEB_COOKIE_SECURE=1.
- **CSRF**: every POST form carries ``csrf``: a per-browser secret XORed with a fresh random
  pad, so the token differs in every answer and compression cannot leak it (BREACH). The secret
  is an HMAC of the session token while logged in, else of the random ``ssm_csrf`` cookie
  (set by the first form page). A POST without a valid token answers 403 and changes nothing.
- **Personal pages** answer ``Cache-Control: private, no-store``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, has_request_context, redirect, request

from shared import auth
from shared.dispatch import Ctx, run
from shared.errors import ApiError, InvalidInput, Unauthenticated
from shared.registry import REGISTRY
from shared.storage import sessions
from shared.web import pages, reads

COOKIE = "ssm_session"
CSRF_COOKIE = "ssm_csrf"
CSRF_FIELD = "csrf"
_PAD = 32  # bytes of a CSRF secret and of its pad
MAIL_PAGE = 20

bp = Blueprint("accounts", __name__)


# -- the caller ---------------------------------------------------------------------------

def _env() -> dict[str, Any]:
    return current_app.extensions["ssm"]


def _ctx(caller: auth.Caller, prefetched: list | None = None) -> Ctx:
    env = _env()
    return Ctx(env["redis"], env["config"], caller, ip=request.remote_addr or "",
               clock=env["clock"], prefetched=prefetched, queue=env["queue"])


def _op(name: str, caller: auth.Caller, args: Mapping[str, Any],
        prefetched: list | None = None) -> Any:
    """Run one operation of the registry as ``caller``; its answer's body. An operation that
    reads account fields with the credential (``Operation.account``: ``player.password``'s
    password hash, ``player.delete``'s clan) gets them as over HTTP: the session is checked
    again with them."""
    op = REGISTRY[name]
    if op.account and caller.kind == "player" and not set(op.account) <= set(caller.account):
        env = _env()
        caller = auth.resolve(env["redis"], env["config"], request.cookies.get(COOKIE),
                              op.account)
    return run(op, _ctx(caller, prefetched), args).body


def viewer(profile: bool = False) -> dict[str, Any] | None:
    """The logged-in player of this request, once per request: ``{caller, name, unread}``, or
    None (no cookie, or a session that ended). One round trip: the session check carries
    ``mail.unread_count``'s read, and with ``profile`` the first of the profile's reads
    (``reads.first``, kept as ``profile_first`` for ``/me``). Marks the session used at most
    once a minute."""
    if "ssm_viewer" in g:
        return g.ssm_viewer
    g.ssm_viewer = None
    token = request.cookies.get(COOKIE)
    if token:
        env = _env()
        unread = REGISTRY["mail.unread_count"]
        ahead = 2 if profile else 0  # reads.first's replies, in front of the unread count's

        def extra(pipe: Any, who: str) -> None:
            if profile:
                reads.first(pipe, who)
            unread.prefetch(pipe, {}, who)  # type: ignore[misc]

        try:
            caller, fetched = auth.resolve_with(env["redis"], env["config"], token, extra=extra)
        except Unauthenticated:
            caller = None
        if caller is not None and caller.kind == "player":
            assert fetched is not None  # a player's session check sent the extra reads
            g.ssm_profile_first = fetched[:ahead] or None
            count = _op("mail.unread_count", caller, {}, fetched[ahead:])["unread"]
            g.ssm_viewer = {"caller": caller, "name": caller.name, "unread": count}
            sessions.touch(env["redis"], caller.lname, caller.session, caller.used,
                           env["clock"]())
    return g.ssm_viewer


def header_account() -> dict[str, Any] | None:
    """What the page header shows: the player's name and unread count (templates); None
    outside a request (a page rendered for a file)."""
    v = viewer() if has_request_context() else None
    return None if v is None else {"name": v["name"], "unread": v["unread"]}


# -- CSRF -----------------------------------------------------------------------------------

def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _csrf_secret() -> bytes:
    token = request.cookies.get(COOKIE)
    if token:
        return hmac.new(b"ssm-csrf-session", token.encode(), hashlib.sha256).digest()
    seed = request.cookies.get(CSRF_COOKIE) or g.get("ssm_new_csrf")
    if not seed or len(seed) > 100:
        seed = g.ssm_new_csrf = secrets.token_urlsafe(_PAD)  # set by _after
    return hmac.new(b"ssm-csrf-browser", seed.encode(), hashlib.sha256).digest()


def csrf_token() -> str:
    """A fresh masked token for a form: pad + (pad XOR secret), different in every answer."""
    if not has_request_context():
        return ""
    secret, pad = _csrf_secret(), secrets.token_bytes(_PAD)
    return _b64(pad + bytes(a ^ b for a, b in zip(pad, secret, strict=True)))


def csrf_ok() -> bool:
    sent = request.form.get(CSRF_FIELD, "")
    try:
        raw = base64.urlsafe_b64decode(sent + "=" * (-len(sent) % 4))
    except (ValueError, binascii.Error):
        return False
    if len(raw) != 2 * _PAD:
        return False
    pad, masked = raw[:_PAD], raw[_PAD:]
    return hmac.compare_digest(bytes(a ^ b for a, b in zip(pad, masked, strict=True)),
                               _csrf_secret())


pages.use_accounts(header_account, csrf_token)


@bp.before_request
def _refuse_forged() -> Response | None:
    if request.method == "POST" and not csrf_ok():
        return _html(pages.error_page(403, "This form has expired or did not come from this "
                                      "site. Go back, reload the page and try again."), 403)
    return None


@bp.after_app_request
def _after(resp: Response) -> Response:
    """The ``ssm_csrf`` cookie when a form made one; ``private, no-store`` on every answer that
    holds something of one browser: an account page (all but ``/boards`` seen anonymously), a
    page whose header names the player, a form whose token is tied to this browser."""
    fresh = g.get("ssm_new_csrf")
    if fresh:
        resp.set_cookie(CSRF_COOKIE, fresh, httponly=True, samesite="Lax",
                        secure=bool(_env()["config"].web_cookie_secure), path="/")
    mine = request.blueprint == "accounts" and (
        request.endpoint != "accounts.boards" or COOKIE in request.cookies)
    if mine or fresh or g.get("ssm_viewer"):
        resp.headers["Cache-Control"] = "private, no-store"
    return resp


# -- answers --------------------------------------------------------------------------------

def _html(body: str, status: int = 200, retry_after: int | None = None) -> Response:
    resp = Response(body, status=status, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = pages.CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    if retry_after:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


def _form(template: str, title: str, err: ApiError | None = None, /,
          **context: Any) -> Response:
    """A form page; with ``err``, the operation's refusal shown on it, with its status."""
    body = pages.render(template, title=title, error=err.message if err else None, **context)
    if err is None:
        return _html(body)
    return _html(body, err.status, err.retry_after)


def _see_other(where: str) -> Response:
    return redirect(where, code=303)  # type: ignore[return-value]


def _set_session(resp: Response, token: str) -> Response:
    config = _env()["config"]
    resp.set_cookie(COOKIE, token, max_age=config.session_ttl, httponly=True, samesite="Lax",
                    secure=bool(config.web_cookie_secure), path="/")
    return resp


def _logged_in(view: Callable[..., Response], profile: bool = False) -> Callable[..., Response]:
    """A page for the logged-in player: others are sent to the login form. ``profile``: the
    session check also reads what the profile reads first (``viewer``)."""
    def wrapped(**path: str) -> Response:
        v = viewer(profile)
        if v is None:
            resp = _see_other("/login")
            if request.cookies.get(COOKIE):  # a session that ended: forget it
                resp.delete_cookie(COOKIE, path="/")
            return resp
        try:
            return view(v, **path)
        except ApiError as err:
            return _html(pages.error_page(err.status, err.message), err.status,
                         err.retry_after)
    wrapped.__name__ = view.__name__
    return wrapped


def _field(name: str, limit: int = 4096) -> str:
    return request.form.get(name, "")[:limit]


# -- sign up, log in, log out ---------------------------------------------------------------

def _login(name: str, password: str) -> Response:
    """session.login as an anonymous caller from this address; 303 to /me with the cookie."""
    body = _op("session.login", auth.ANONYMOUS, {"name": name, "password": password})
    return _set_session(_see_other("/me"), body["token"])


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Response:
    name = _field("name", 64)
    if request.method == "GET":
        return _form("signup.html", "Sign up", name=name)
    try:
        if _field("password", 1024) != _field("password2", 1024):
            raise InvalidInput("password2", "does not match password")
        _op("player.register", auth.ANONYMOUS, {"name": name,
                                                "password": _field("password", 1024)})
        return _login(name, _field("password", 1024))
    except ApiError as err:
        return _form("signup.html", "Sign up", err, name=name)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    name = _field("name", 64)
    if request.method == "GET":
        return _form("login.html", "Log in", name=name)
    try:
        return _login(name, _field("password", 1024))
    except ApiError as err:
        return _form("login.html", "Log in", err, name=name)


@bp.post("/logout")
def logout() -> Response:
    v = viewer()
    if v is not None:
        _op("session.logout", v["caller"], {})
    resp = _see_other("/")
    resp.delete_cookie(COOKIE, path="/")
    return resp


# -- /me ------------------------------------------------------------------------------------

@bp.get("/me")
@functools.partial(_logged_in, profile=True)
def me(v: dict[str, Any]) -> Response:
    env = _env()  # the profile page's pipelined reads (shared/web/reads.py): the same answers,
    # their first round trip made with the session check (two round trips in all)
    player, where, records, clan = reads.profile(env["redis"], v["caller"].name,
                                                 env["clock"](), env["config"].status_ttl,
                                                 g.ssm_profile_first)
    return _html(pages.me_page(player, where, records, clan, v["unread"]))


@bp.get("/me/mail")
@_logged_in
def inbox(v: dict[str, Any]) -> Response:
    cursor = request.args.get("cursor", "")
    args: dict[str, Any] = {"limit": MAIL_PAGE}
    if cursor.isdigit() and len(cursor) <= 15:
        args["cursor"] = cursor
    listing = _op("mail.list", v["caller"], args)
    return _html(pages.render("me_mail.html", title="Mail", mail=listing["mail"],
                              next_cursor=listing["next_cursor"], paged="cursor" in args,
                              unread=v["unread"], sent=request.args.get("sent", "")[:15],
                              deleted=request.args.get("deleted") == "1", when=pages.when))


@bp.get("/me/mail/<mail_id>")
@_logged_in
def read_mail(v: dict[str, Any], mail_id: str) -> Response:
    m = _op("mail.read", v["caller"], {"id": mail_id})
    v["unread"] = _op("mail.unread_count", v["caller"], {})["unread"]  # the header: read now
    return _html(pages.render("me_mail_read.html", title=m["subject"] or "Mail", m=m,
                              reply=f"/me/mail/new?to={quote(m['from'] or '', safe='')}",
                              when=pages.when))


@bp.post("/me/mail/<mail_id>/delete")
@_logged_in
def delete_mail(v: dict[str, Any], mail_id: str) -> Response:
    _op("mail.delete", v["caller"], {"id": mail_id})
    return _see_other("/me/mail?deleted=1")


@bp.route("/me/mail/new", methods=["GET", "POST"])
@_logged_in
def new_mail(v: dict[str, Any]) -> Response:
    source = request.form if request.method == "POST" else request.args
    typed = {k: source.get(k, "")[:4096] for k in ("to", "subject", "body")}
    if request.method == "GET":
        return _form("me_mail_new.html", "New mail", **typed)
    try:
        _op("mail.send", v["caller"], typed)
    except ApiError as err:
        return _form("me_mail_new.html", "New mail", err, **typed)
    return _see_other(f"/me/mail?sent={quote(typed['to'], safe='')}")


@bp.route("/me/password", methods=["GET", "POST"])
@_logged_in
def password(v: dict[str, Any]) -> Response:
    if request.method == "GET":
        return _form("me_password.html", "Password", ended=None)
    try:
        if _field("new", 1024) != _field("new2", 1024):
            raise InvalidInput("new2", "does not match new")
        done = _op("player.password", v["caller"], {"name": v["caller"].name,
                                                    "old": _field("old", 1024),
                                                    "new": _field("new", 1024)})
    except ApiError as err:
        return _form("me_password.html", "Password", err, ended=None)
    return _form("me_password.html", "Password", ended=done["sessions_ended"])


@bp.get("/me/sessions")
@_logged_in
def session_list(v: dict[str, Any]) -> Response:
    listed = _op("session.list", v["caller"], {})["sessions"]
    return _html(pages.render("me_sessions.html", title="Sessions", sessions=listed,
                              ended=request.args.get("ended", "")[:6], when=pages.when))


@bp.post("/me/sessions/others")
@_logged_in
def end_others(v: dict[str, Any]) -> Response:
    n = _op("session.end_others", v["caller"], {})["sessions_ended"]
    return _see_other(f"/me/sessions?ended={n}")


@bp.post("/me/sessions/<sid>/end")
@_logged_in
def end_session(v: dict[str, Any], sid: str) -> Response:
    _op("session.end", v["caller"], {"id": sid})
    if sessions.session_id(v["caller"].session) == sid:  # this browser's own: logged out
        resp = _see_other("/login")
        resp.delete_cookie(COOKIE, path="/")
        return resp
    return _see_other("/me/sessions?ended=1")


@bp.get("/me/export")
@_logged_in
def export(v: dict[str, Any]) -> Response:
    doc = _op("player.export", v["caller"], {"name": v["caller"].name})
    resp = current_app.response_class(current_app.json.dumps(doc, indent=2),
                                      mimetype="application/json")
    resp.headers["Content-Disposition"] = \
        f'attachment; filename="ssmglobal-{v["caller"].lname}.json"'
    return resp


@bp.route("/me/delete", methods=["GET", "POST"])
@_logged_in
def delete(v: dict[str, Any]) -> Response:
    if request.method == "GET":
        return _form("me_delete.html", "Delete account")
    caller = v["caller"]
    try:  # the password, checked as a login is (the lockout applies)
        proof = _op("session.login", auth.ANONYMOUS, {"name": caller.name,
                                                      "password": _field("password", 1024)})
    except ApiError as err:
        return _form("me_delete.html", "Delete account", err)
    try:
        _op("player.delete", caller, {"name": caller.name})  # ends the proof session too
    except BaseException:  # the account stays: so must no extra session
        sessions.end(_env()["redis"], caller.lname,
                     sessions.session_id(auth.sha256(proof["token"])), "")
        raise
    g.ssm_viewer = None  # the header: nobody is logged in any more
    resp = _html(pages.render("message.html", title="Account deleted",
                              heading="Account deleted",
                              text=f"The account {caller.name} and everything stored about it "
                                   "are gone. The name is free again."))
    resp.delete_cookie(COOKIE, path="/")
    return resp


# -- /boards --------------------------------------------------------------------------------

@bp.get("/boards")
def boards() -> Response:
    listed = _op("board.list", auth.ANONYMOUS, {})["boards"]
    return _html(pages.render("boards.html", title="Boards", boards=listed))
