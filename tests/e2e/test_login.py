from tests.e2e.conftest import screenshot


def test_log_in_and_see_the_overview(logged_in_page):
    page = logged_in_page
    assert page.locator("h1").first.inner_text() == "Overview"
    nav = page.locator("nav.mainnav a").all_inner_texts()
    assert nav == ["Overview", "Sources", "Feeds", "Orders", "Contacts", "Destinations", "Onsite", "Alerts", "Jobs",
                   "Settings"]
    path = screenshot(page, "overview")
    assert path.stat().st_size > 5000


def test_wrong_password_shows_an_error(page, user):
    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert "Wrong email or password" in page.locator(".flash-error").inner_text()


def test_phone_layout_has_a_menu_toggle(browser, live_server, user):
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 800})
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    assert not page.locator("nav.mainnav").is_visible()
    page.click("label.nav-toggle-label")
    assert page.locator("nav.mainnav").is_visible()
    screenshot(page, "overview-phone")
    context.close()
