"""The reconcile's plan: the set of planned ids stays compact and exact enough, and a product id that two
sources use becomes one variant (the first), the other counted as skipped."""

from __future__ import annotations

import random
from decimal import Decimal

from tests.conftest import both_databases
from webapp.models import Product, Source
from webapp.services.platform_catalogs import plan


class _SmallRuns(plan.IdSet):
    RUN = 4
    MAX_RUNS = 2


def test_ids_are_found_across_runs_merges_and_the_unsorted_tail():
    rng = random.Random(3)
    ids = [f"sku-{rng.randrange(10**9)}" for _ in range(103)]
    planned = _SmallRuns(ids[:50])
    assert all(external_id in planned for external_id in ids[:50])  # runs merged, tail sorted in
    planned.update(ids[50:])
    assert all(external_id in planned for external_id in ids)
    assert not any(f"other-{n}" in planned for n in range(500))
    assert len(planned) == len(ids)
    assert len(planned._runs) <= _SmallRuns.MAX_RUNS + 1


def test_an_empty_set_holds_nothing():
    assert "anything" not in plan.IdSet()


@both_databases
def test_a_product_id_two_sources_use_becomes_one_variant(db):
    sources = [Source(name=name, kind="push") for name in ("A", "B")]
    db.session.add_all(sources)
    db.session.flush()
    for source in sources:
        db.session.add(Product(source_id=source.id, external_id="SHARED", title=f"from {source.name}",
                               link="https://shop.test/p", price=Decimal("5"), content_hash=source.id))
    db.session.add(Product(source_id=sources[1].id, external_id="OWN", title="own", link="https://shop.test/o",
                           price=Decimal("7"), content_hash=3))
    db.session.commit()
    skips, planned = plan.Skips(), plan.IdSet()
    variants = [entity for page in plan.groups(skips, planned) for entity in page if entity.kind == "variant"]
    assert sorted(entity.external_id for entity in variants) == ["OWN", "SHARED"]
    assert skips.counts == {"the same product id in two sources": 1}
    assert "SHARED" in planned and "OWN" in planned and "ELSE" not in planned
