"""What a screen reader names a page's controls, read from the HTML: enough of the accessible
name computation for the portal's own markup (aria-label, a <label for>, the element's text with
its visually hidden part), and the words a sighted person sees."""
from __future__ import annotations

import copy
import re

import lxml.html

# The controls a keyboard or a screen reader's list of form fields and buttons reaches.
CONTROLS = ".//a[@href] | .//button | .//summary | .//select | .//textarea | .//input[not(@type='hidden')]"
_HIDDEN = './/*[contains(concat(" ", normalize-space(@class), " "), " visually-hidden ")]'


def page_of(response):
    return lxml.html.fromstring(response.get_data(as_text=True))


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def accessible_name(control, page) -> str:
    """aria-label, else the text of the labels that name a form field, else the element's text
    (a visually hidden part included)."""
    if control.get("aria-label") is not None:
        return _words(control.get("aria-label"))
    if control.tag in ("input", "select", "textarea"):
        return _words(" ".join(label.text_content()
                               for label in page.xpath("//label[@for=$id]", id=control.get("id"))))
    return _words(control.text_content())


def visible_text(element) -> str:
    """The element's words without its visually hidden parts: what the page shows."""
    shown = copy.deepcopy(element)
    for hidden in shown.xpath(_HIDDEN):
        hidden.drop_tree()
    return _words(shown.text_content())
