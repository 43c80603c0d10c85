"""Dashboard login and logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import login_user, logout_user

from webapp.security import authenticate

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():  # noqa: ANN201
    if request.method == "GET":
        return render_template("auth/login.html")
    email = request.form.get("email", "")
    user = authenticate(email, request.form.get("password", ""))
    if user is None:
        return render_template("auth/login.html", error="Wrong email or password.", email=email), 401
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
