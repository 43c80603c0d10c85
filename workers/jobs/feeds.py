"""RQ job: build one feed."""

from webapp.services.publishing.builds import run_build


def build_feed_job(build_id: int) -> dict:
    build = run_build(build_id)
    return {"build_id": build_id, "status": build.status if build else "missing"}
