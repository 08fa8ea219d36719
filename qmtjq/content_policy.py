"""The Content-Security-Policy every response carries (django-csp 4, `CONTENT_SECURITY_POLICY`).

Scripts come from this site only: no inline script, no eval. The vendored
ECharts (static/vendor) needs neither: its one `new Function` is a fallback
for GeoJSON maps in browsers without JSON.parse, which we never draw.

Styles come from this site's files too:

- `style-src-attr 'none'`: no style *attribute* is applied, on any page
  (admin and API docs included). Markup that slipped past escaping cannot
  restyle a page (hide a warning, lay a fake button over "approve"). Our
  templates, admin columns and chart tooltips style through classes in
  static CSS; Django admin, select2 and Swagger UI set styles through the
  CSSOM (`element.style.x = ...`), which the policy does not govern.
  `qmtjq/tests/test_no_inline_styles.py` keeps it so.
- `style-src-elem` also allows the exact inline `<style>` blocks of Django
  admin's change list and drf-spectacular's Swagger page, by their sha256
  hashes, computed from the installed templates so an upgrade keeps them
  right. Any other `<style>` element is refused.
"""

import base64
import hashlib
import re
from importlib.util import find_spec
from pathlib import Path

from csp.constants import NONE, SELF

# (package, template path inside it) of third-party templates with an inline <style> block.
THIRD_PARTY_INLINE_STYLES = [
    ("django.contrib.admin", "templates/admin/change_list.html"),
    ("drf_spectacular", "templates/drf_spectacular/swagger_ui.html"),
]
_STYLE_BLOCK = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def inline_style_hashes(templates: list[tuple[str, str]] = THIRD_PARTY_INLINE_STYLES) -> list[str]:
    """CSP source expressions ('sha256-…') for every <style> block in the named package templates."""
    hashes = []
    for package, relative in templates:
        spec = find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        template = Path(next(iter(spec.submodule_search_locations))) / relative
        if not template.is_file():
            continue
        for block in _STYLE_BLOCK.findall(template.read_text(encoding="utf-8")):
            digest = base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode("ascii")
            hashes.append(f"'sha256-{digest}'")
    return hashes


def content_security_policy() -> dict:
    """The value of settings.CONTENT_SECURITY_POLICY."""
    return {
        "DIRECTIVES": {
            "default-src": [SELF],
            "script-src": [SELF],
            "style-src": [SELF],
            "style-src-elem": [SELF, *inline_style_hashes()],
            "style-src-attr": [NONE],
            # Swagger UI and admin icons use data: images inside their stylesheets.
            "img-src": [SELF, "data:"],
            "font-src": [SELF],
            "connect-src": [SELF],
            "object-src": [NONE],
            "base-uri": [SELF],
            "form-action": [SELF],
            "frame-ancestors": [NONE],
        }
    }
