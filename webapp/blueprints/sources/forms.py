"""Source create/edit and the mapping step (columns → product fields, with a preview of stored products)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from feeds.mapping import REQUIRED_TARGETS
from webapp.blueprints.common import is_htmx
from webapp.blueprints.sources.pages import bp, get_source
from webapp.models import Source
from webapp.schemas.sources import SourceUpdate
from webapp.services.catalog.source_forms import (
    DELIMITERS,
    KIND_BLURBS,
    KIND_LABELS,
    OPTION_FIELDS,
    SourceForm,
    credentials_summary,
    edit_form,
    new_form,
    save_changes,
    save_new,
    upload_limit,
)
from webapp.services.catalog.source_preview import (
    MAPPABLE_KINDS,
    TARGET_LABELS,
    MappingView,
    Preview,
    mapping_from_form,
    mapping_view,
    missing_required,
    preview,
)
from webapp.services.catalog.sources import source_warnings, update_source
from webapp.services.catalog.sync import SyncAlreadyRunning, request_sync


def _flash_warnings(source: Source) -> None:
    """Saved, but the source cannot do everything yet (e.g. no Store URL): say so after the redirect."""
    for warning in source_warnings(source):
        flash(warning["message"][:1].upper() + warning["message"][1:] + ".", "warning")


def _form_page(form: SourceForm, source: Source | None, status: int = 200):  # noqa: ANN202
    return render_template("sources/form.html", form=form, source=source, kinds=KIND_LABELS, blurbs=KIND_BLURBS,
                           option_fields=OPTION_FIELDS, delimiters=DELIMITERS, upload_limit=upload_limit(),
                           credentials=credentials_summary(source) if source else []), status


@bp.get("/new")
def new():  # noqa: ANN201
    return _form_page(new_form(request.args.get("kind", "csv"), request.args.get("via", "upload")), None)


@bp.post("/new")
def create():  # noqa: ANN201
    source, form = save_new(request.form, request.files.get("upload"))
    if source is None:
        return _form_page(form, None, 422)
    if source.kind == "push":
        flash(f"{source.name} is ready: post products to it with the request below.", "success")
        return redirect(url_for("sources.show", source_id=source.id))
    flash(f"{source.name} saved. Check how its columns map to product fields, then sync.", "success")
    _flash_warnings(source)
    return redirect(url_for("sources.mapping", source_id=source.id))


@bp.get("/<int:source_id>/edit")
def edit(source_id: int):  # noqa: ANN201
    source = get_source(source_id)
    return _form_page(edit_form(source), source)


@bp.post("/<int:source_id>/edit")
def update(source_id: int):  # noqa: ANN201
    source = get_source(source_id)
    form = save_changes(source, request.form, request.files.get("upload"))
    if form is not None:
        return _form_page(form, source, 422)
    flash("Saved.", "success")
    _flash_warnings(source)
    if source.kind != "push" and request.form.get("next") == "mapping":
        return redirect(url_for("sources.mapping", source_id=source.id))
    return redirect(url_for("sources.show", source_id=source.id))


def _mapping_page(view: MappingView, shown: Preview, *, errors: list[str] | None = None, status: int = 200):  # noqa: ANN202
    return render_template("sources/mapping.html", source=view.source, view=view, preview=shown,
                           target_labels=TARGET_LABELS, required=REQUIRED_TARGETS,
                           missing=missing_required(view.mapping) if view.mappable and not view.error else [],
                           errors=errors or []), status


@bp.get("/<int:source_id>/mapping")
def mapping(source_id: int):  # noqa: ANN201
    source = get_source(source_id)
    if source.kind == "push":
        return redirect(url_for("sources.show", source_id=source.id))
    refresh = request.args.get("refresh") == "1"
    view = mapping_view(source, refresh=refresh)
    shown = preview(source, view.mapping) if view.error is None else Preview(error=view.error)
    return _mapping_page(view, shown)


@bp.post("/<int:source_id>/mapping/preview")
def mapping_preview(source_id: int):  # noqa: ANN201
    """The first products as the mapping in the form would store them (nothing is saved)."""
    source = get_source(source_id)
    chosen = mapping_from_form(request.form)
    shown = preview(source, chosen)
    if is_htmx():
        return render_template("sources/_preview.html", source=source, preview=shown,
                               missing=missing_required(chosen) if source.kind in MAPPABLE_KINDS else [])
    view = mapping_view(source)
    view.mapping = chosen
    return _mapping_page(view, shown)


@bp.post("/<int:source_id>/mapping")
def save_mapping(source_id: int):  # noqa: ANN201
    source = get_source(source_id)
    view = mapping_view(source)
    if view.mappable:
        chosen = mapping_from_form(request.form)
        missing = missing_required(chosen)
        if missing:
            view.mapping = chosen
            return _mapping_page(view, preview(source, chosen), status=422,
                                 errors=[f"Choose a column for {', '.join(missing)}: every product needs it."])
        update_source(source, SourceUpdate(mapping=chosen))
    if request.form.get("sync") == "1":
        try:
            run = request_sync(source, trigger="manual")
            flash(f"Mapping saved. Sync #{run.id} queued.", "success")
        except SyncAlreadyRunning as exc:
            flash(f"Mapping saved. Sync #{exc.run.id} is already {exc.run.status}.", "warning")
    else:
        flash("Mapping saved. Use “Sync now” to load the products.", "success")
    return redirect(url_for("sources.show", source_id=source.id))
