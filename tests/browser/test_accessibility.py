"""Each page works with the keyboard, has labels on every control, and shows errors next to the
field.

One lab is seeded with a row of everything (images, a ready snapshot, a training job, a model
version, an evaluation, a webhook, readers, sessions, recordings) so that every page shows its
forms; then its admin visits every HTML page of the page view modules that
``tests/apps/test_tenancy_pages.py`` walks (routes from Django's resolver, objects from its
factories; POST-only routes and PNG/CSV responses are left out) and, on each page, JavaScript in
the page checks that every control has an accessible name, that nothing clickable is out of the
keyboard's reach, and that Tab walks the page's first form in order with a visible focus ring.
Then three forms get bad input in the browser and show their errors inside the field's wrapper,
an Enter in a text input submits its form, and a screenshot of every page is kept.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from apps.gaze.models import Reader
from apps.labs.services import invitation_create
from apps.webhooks.models import Webhook
from tests.apps.datasets.objects import lab_with_data
from tests.apps.test_tenancy_pages import PAGE_RESOURCES, PAGE_ROUTES_NOT_WALKED, page_routes
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _files(settings, tmp_path):
    settings.STORAGE_CACHE_DIR = str(tmp_path / "cache")
    settings.VAR_DIR = tmp_path / "var"
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False


# Before any script of the page runs: remember every element a script gives a click (or
# pointer, key) listener, so that the audit can tell a clickable element a mouse alone reaches.
RECORD_LISTENERS = """(() => {
  const clickable = new Set();
  window.__a11yClickable = clickable;
  const add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, listener, options) {
    if (["click", "mousedown", "mouseup", "pointerdown", "pointerup", "dblclick"].includes(type)
        && this instanceof Element) {
      clickable.add(this);
    }
    return add.call(this, type, listener, options);
  };
})();"""

# Rules 1 and 2 on the page as it is drawn: returns one line per problem.
AUDIT = """() => {
  const problems = [];
  const visible = (el) => {
    if (!el.getClientRects().length) return false;
    const style = getComputedStyle(el);
    return style.visibility !== "hidden" && style.display !== "none";
  };
  const describe = (el) => {
    const bits = [el.tagName.toLowerCase()];
    if (el.type && el.tagName !== "BUTTON") bits.push(`[type=${el.type}]`);
    if (el.id) bits.push(`#${el.id}`);
    if (el.name) bits.push(`[name=${el.name}]`);
    if (el.className && typeof el.className === "string") {
      bits.push(`.${el.className.trim().split(/\\s+/).join(".")}`);
    }
    return bits.join("");
  };
  const text = (el) => (el.textContent || "").replace(/\\s+/g, " ").trim();
  const labelled = (el) => {
    if ((el.getAttribute("aria-label") || "").trim()) return true;
    const ids = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean);
    const named = (id) => { const ref = document.getElementById(id); return ref && text(ref); };
    if (ids.some(named)) return true;
    return [...(el.labels || [])].some((label) => text(label) || label.querySelector("img[alt]"));
  };
  // 1. Every visible control has an accessible name.
  const controls = document.querySelectorAll(
    "input:not([type=hidden]):not([type=submit]):not([type=button]):not([type=reset])"
    + ":not([type=image]), select, textarea"
  );
  for (const el of controls) {
    if (visible(el) && !labelled(el)) problems.push(`control without a label: ${describe(el)}`);
  }
  // 2. Nothing clickable is out of the keyboard's reach.
  const natively = (el) => el.matches(
    "a[href], button, input:not([type=hidden]), select, textarea, summary, iframe,"
    + " [contenteditable=''], [contenteditable=true]"
  );
  const focusable = (el) => !el.disabled && el.tabIndex >= 0
    && (natively(el) || el.hasAttribute("tabindex"));
  for (const el of document.querySelectorAll("[onclick], [role=button], [role=link]")) {
    if (visible(el) && !focusable(el)) {
      problems.push(`clickable but not focusable: ${describe(el)}`);
    }
  }
  for (const el of window.__a11yClickable || []) {
    if (!el.isConnected || !visible(el)) continue;
    if (el === document.body || el === document.documentElement) continue;
    if (el.closest(".js-plotly-plot")) continue;  // Plotly's own drag layers
    if (focusable(el) || el.tagName === "LABEL") continue;
    // A container that delegates its children's clicks is fine when the children are reachable.
    const reachable = "a[href], button, input:not([type=hidden]), select, textarea,"
      + " [tabindex]:not([tabindex='-1'])";
    if (el.querySelector(reachable)) continue;
    problems.push(`click listener on an element the keyboard cannot reach: ${describe(el)}`);
  }
  for (const a of document.querySelectorAll("a")) {
    if (!a.hasAttribute("href")) problems.push(`link without an href: ${describe(a)} "${text(a)}"`);
  }
  for (const b of document.querySelectorAll("button, input[type=submit], input[type=button]")) {
    if (!visible(b)) continue;
    const name = b.tagName === "BUTTON" ? text(b) : (b.value || "").trim();
    const aria = (b.getAttribute("aria-label") || b.getAttribute("aria-labelledby")
      || b.getAttribute("title") || "").trim();
    if (!name && !aria) problems.push(`button without text or aria-label: ${describe(b)}`);
  }
  return problems;
}"""

# The tab stops of the n-th form in <main> (of those with any), in document order, each tagged
# with data-a11y-stop (on a page without forms, those of <main>: its figure tools, its sort
# control); returns how many, and how many forms there are. A form in a closed
# <details> is opened first (OPEN_DETAILS), as its user would.
OPEN_DETAILS = """() => {
  for (const details of document.querySelectorAll("main details:not([open])")) details.open = true;
}"""
TAG_FORM = """(n) => {
  for (const el of document.querySelectorAll("[data-a11y-stop]")) {
    el.removeAttribute("data-a11y-stop");
  }
  const visible = (el) => el.checkVisibility({ checkVisibilityCSS: true });
  const stopsOf = (form) => {
    const seen = new Set();
    return [...form.querySelectorAll(
      "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]"
    )].filter((el) => {
      if (!visible(el) || el.disabled || el.tabIndex < 0) return false;
      if (el.type === "radio" && el.name) {  // a radio group is one tab stop
        if (seen.has(el.name)) return false;
        const group = [...form.querySelectorAll(`input[type=radio][name="${el.name}"]`)];
        const stop = group.find((r) => r.checked) || group[0];
        if (stop !== el) return false;
        seen.add(el.name);
      }
      return true;
    });
  };
  let forms = [...document.querySelectorAll("main form")]
    .filter((f) => visible(f) && stopsOf(f).length);
  if (!forms.length) forms = [document.querySelector("main")].filter((m) => stopsOf(m).length);
  const form = forms[n];
  if (!form) return { count: 0, forms: forms.length };
  const stops = stopsOf(form);
  stops.forEach((el, i) => el.setAttribute("data-a11y-stop", String(i)));
  const tag = form.tagName.toLowerCase();
  const label = form.id ? `#${form.id}` : `${tag}[action=${form.getAttribute("action") || ""}]`;
  return { count: stops.length, forms: forms.length, form: label };
}"""

# Which tab stop has the focus, and whether its focus shows.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return { stop: null, shown: false, what: "body" };
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow && style.boxShadow !== "none";
  return {
    stop: el.getAttribute("data-a11y-stop"),
    shown: Boolean(outline || shadow),
    what: el.tagName.toLowerCase() + (el.id ? `#${el.id}` : "")
      + (el.name ? `[name=${el.name}]` : ""),
  };
}"""


def _seed(personas) -> dict[str, str]:
    """A lab with a row of everything; returns {route name: URL} of every HTML page of it."""
    admin = personas.admin_a
    lab_with_data(personas.lab_a, admin, per_class=(2, 2, 2))
    made: dict[type, object] = {}
    routes = page_routes()
    urls: dict[str, str] = {}
    for route in routes:
        make, model, _body = PAGE_RESOURCES[route.name]
        if model not in made:
            made[model] = make(personas)
        urls[route.name] = route.url(made[model].pk if route.detail else None)
    # The module's pages that the tenancy walk leaves out: one's tokens, a new lab, the
    # invitation link (its holder's page).
    _, token = invitation_create(
        lab=personas.lab_a, actor=admin, invitee="guest@example.org", role="viewer",
        build_url=str,
    )  # fmt: skip
    urls["tokens"] = reverse("tokens")
    urls["lab-create"] = reverse("lab-create")
    urls["invitation-accept"] = reverse("invitation-accept", kwargs={"token": token})
    assert set(PAGE_ROUTES_NOT_WALKED) - set(urls) <= {"lab-switch", "token-revoke"}

    client = Client()
    client.force_login(admin)
    pages: dict[str, str] = {}
    for name, url in urls.items():
        response = client.get(url)
        if response.status_code == 405:  # a POST-only route
            continue
        assert response.status_code == 200, (name, url, response.status_code)
        if response["Content-Type"].startswith("text/html"):
            pages[name] = url
    return pages


def _tab_through_forms(page, name: str) -> tuple[int, list[str]]:
    """Tab through every form of the page's <main>; returns how many, and the problems."""
    page.evaluate(OPEN_DETAILS)
    n, problems = 0, []
    while True:
        tagged = page.evaluate(TAG_FORM, n)
        if tagged["count"] == 0:
            return n, problems
        problems += _tab_through(page, name, tagged)
        n += 1


def _tab_through(page, name: str, tagged: dict) -> list[str]:
    """Tab from the first tagged stop to the last: each in turn, each with a visible focus."""
    count = tagged["count"]
    # Reach the first stop by the keyboard: focus it, step back, and Tab into it.
    page.locator("[data-a11y-stop='0']").focus()
    page.keyboard.press("Shift+Tab")
    seen: list[str] = []
    problems: list[str] = []
    for _ in range(count * 4 + 6):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused["stop"] is None:
            if seen:
                break  # left the form
            continue
        if not seen or seen[-1] != focused["stop"]:  # a date input has several stops inside
            seen.append(focused["stop"])
            if not focused["shown"]:
                problems.append(f"{name}: no visible focus on {focused['what']}")
        if len(seen) == count:
            break
    expected = [str(i) for i in range(count)]
    if seen != expected:
        problems.append(f"{name}: Tab walked {tagged['form']} as {seen}, not {expected}")
    return problems


def _error_next_to(page, control_selector: str, message: re.Pattern) -> None:
    """The control's error shows inside its .field wrapper, after the control; the control is
    marked invalid and names the error in its aria-describedby."""
    control = page.locator(control_selector).first
    field = control.locator("xpath=ancestor::*[contains(concat(' ', @class, ' '), ' field ')][1]")
    expect(field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(field.locator(".error")).to_contain_text(message)
    where = control.evaluate(
        """(el) => {
          const field = el.closest(".field");
          const error = field.querySelector(".error");
          const ids = (el.getAttribute("aria-describedby") || "").split(/\\s+/);
          return {
            after: Boolean(el.compareDocumentPosition(error) & Node.DOCUMENT_POSITION_FOLLOWING),
            described: ids.includes(error.id),
            invalid: el.getAttribute("aria-invalid") === "true",
          };
        }"""
    )
    assert where["after"], (control_selector, where)
    assert where["described"] and where["invalid"], (control_selector, where)


def test_every_page_works_with_the_keyboard_and_labels_its_controls(
    live_server, page, personas, tmp_path
):
    pages = _seed(personas)
    assert len(pages) >= 25, pages
    shots = Path(tmp_path / "screenshots")
    page.add_init_script(RECORD_LISTENERS)

    sign_in(page, f"{live_server.url}/login/?next=/", "admin_a")
    expect(page.locator("#lab-name")).to_have_text("Lab A")

    problems: list[str] = []
    walked = 0
    for name, url in pages.items():
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("load")
        if page.locator(".eval-figure").count():  # audit the figures once Plotly drew them
            expect(page.locator(".eval-figure .main-svg").first).to_be_attached()
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        problems += [f"{name} ({url}): {p}" for p in page.evaluate(AUDIT)]
        n, tab_problems = _tab_through_forms(page, name)
        problems += tab_problems
        walked += n
        print(f"  {name}: {url} ({n} forms walked with Tab)")
    assert not problems, "\n".join(problems)
    assert walked >= 40, walked  # most pages have forms to walk
    print(f"{len(pages)} pages checked, {walked} forms walked with Tab; screenshots in {shots}")

    # The audit is no blank check: each kind of fault it looks for, put in a page, is reported.
    page.goto(f"{live_server.url}{reverse('gaze-readers')}")
    page.evaluate(
        """() => {
          const main = document.querySelector("main");
          main.insertAdjacentHTML("beforeend", '<input id="probe-input">'
            + '<span id="probe-role" role="button">x</span><a id="probe-link">x</a>'
            + '<button id="probe-button"></button><div id="probe-div">x</div>');
          document.getElementById("probe-div").addEventListener("click", () => {});
        }"""
    )
    found = "\n".join(page.evaluate(AUDIT))
    for probe in ("probe-input", "probe-role", "probe-link", "probe-button", "probe-div"):
        assert f"#{probe}" in found, (probe, found)

    # Enter in the first text input submits the form: a reader is added.
    page.goto(f"{live_server.url}{reverse('gaze-readers')}")
    page.locator("#reader-form input[name=code]").focus()
    page.keyboard.type("R-enter")
    page.keyboard.press("Enter")
    expect(page.locator("#reader-table")).to_contain_text("R-enter")
    assert Reader.objects.filter(lab=personas.lab_a, code="R-enter").exists()

    # Errors next to the field. A reader with a blank code (spaces pass the browser's check).
    page.goto(f"{live_server.url}{reverse('gaze-readers')}")
    page.locator("#reader-form input[name=code]").fill("   ")
    page.locator("#reader-form button[type=submit]").click()
    _error_next_to(page, "#reader-form input[name=code]", re.compile("required", re.I))
    page.screenshot(path=str(shots / "error-reader.png"), full_page=True)

    # A webhook to a private address.
    hooks = Webhook.objects.count()
    page.goto(f"{live_server.url}{reverse('webhooks')}")
    page.get_by_label("URL").fill("https://10.1.2.3/hook")
    page.locator("#webhook-form input[name=events]").first.check()
    page.locator("#webhook-form button[type=submit]").click()
    _error_next_to(page, "#webhook-form input[name=url]", re.compile("private|public", re.I))
    assert Webhook.objects.count() == hooks
    page.screenshot(path=str(shots / "error-webhook.png"), full_page=True)

    # A snapshot at a height that is no multiple of 16.
    page.goto(f"{live_server.url}{reverse('datasets-snapshots')}")
    page.locator("#snapshot-form input[name=name]").fill("odd size")
    page.locator("#snapshot-form input[name=height]").fill("100")
    page.locator("#snapshot-form button[type=submit]").click()
    _error_next_to(page, "#snapshot-form input[name=height]", re.compile("multiples of 16"))
    page.screenshot(path=str(shots / "error-snapshot.png"), full_page=True)
