"""`shoprelay alerts list`, `shoprelay alerts test ID`, `shoprelay alerts check`."""

from webapp.models import Destination
from webapp.services.delivery.destinations import pause_destination
from webapp.services.platform.crypto import encrypt_json


def test_list_and_test(runner, make_channel, receiver):
    channel = make_channel(receiver.url, name="Ops hook", events=["destination_paused"])
    listed = runner.invoke(args=["alerts", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"#{channel['id']} Ops hook — JSON {channel['url_hint']} (enabled)" in listed.output
    assert "events: destination_paused" in listed.output and "0 open incident(s)." in listed.output
    tested = runner.invoke(args=["alerts", "test", str(channel["id"])])
    assert tested.exit_code == 0 and "test sent" in tested.output
    assert receiver.titles() == ["[shoprelay] Test notice"]
    receiver.status = 500
    failed = runner.invoke(args=["alerts", "test", str(channel["id"])])
    assert failed.exit_code == 1 and "the test failed" in failed.output and "500" in failed.output
    assert runner.invoke(args=["alerts", "test", "999"]).exit_code == 1


def test_check_evaluates_and_sends_now(runner, db, make_channel, receiver, scheduler_alive):
    make_channel(receiver.url, events=["destination_paused"])
    destination = Destination(name="Klaviyo EU", kind="webhook", credentials_encrypted=encrypt_json(
        {"url": "http://127.0.0.1:9/hook", "secret": "abcdefgh"}), events=[], rate_limits={})
    db.session.add(destination)
    db.session.commit()
    pause_destination(destination)
    checked = runner.invoke(args=["alerts", "check"])
    assert checked.exit_code == 0, checked.output
    assert "1 notice(s) sent" in checked.output
    assert receiver.titles() == ["[shoprelay] Klaviyo EU is paused"]
    listed = runner.invoke(args=["alerts", "list"]).output
    assert "[destination_paused] Klaviyo EU is paused" in listed and f"/destinations/{destination.id}" in listed
