"""Dashboard login and logout.

Failed logins are throttled per account and per client address (webapp.security.logins.login_wait): past the
allowance each further try must wait longer (1 s doubling to 15 min). A throttled try is refused at once with
the time to wait (429 + Retry-After): the password is not even checked, and no request sleeps.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import login_user, logout_user

from webapp.security import authenticate, login_failed, login_succeeded, login_wait

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():  # noqa: ANN201
    if request.method == "GET":
        return render_template("auth/login.html")
    email, address = request.form.get("email", ""), request.remote_addr or ""
    wait = login_wait(email, address)
    if wait is not None:
        return (render_template("auth/login.html", error=wait.message, email=email), 429,
                {"Retry-After": wait.retry_after})
    user = authenticate(email, request.form.get("password", ""))
    if user is None:
        login_failed(email, address)
        wait = login_wait(email, address)
        error = "Wrong email or password." + (f" {wait.message}" if wait is not None else "")
        return render_template("auth/login.html", error=error, email=email), 401
    login_succeeded(email)
    login_user(user, remember=True)
    target = request.args.get("next") or ""
    # Only same-site relative redirects: never an open redirect.
    if not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        target = url_for("overview.index")
    return redirect(target)


@bp.route("/logout", methods=["POST"])
def logout():  # noqa: ANN201
    logout_user()
    return redirect(url_for("auth.login"))
