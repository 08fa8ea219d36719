"""Shared input checks for every API and page: JSON bodies, text fields and query parameters.

Everything a caller sends passes through here before any business code sees
it, so one rule holds everywhere: bad input is an `InputError` naming the
field (answered 400 JSON by `qmtjq.api`), never an exception deep inside
hashing, the database driver or `int()`.
"""

import json
import re
import unicodedata

# The largest value a signed 64-bit database column holds (BigAutoField ids).
DB_INT_MAX = 2**63 - 1
# Page numbers far beyond any real list are refused instead of becoming huge OFFSETs.
PAGE_MAX = 1_000_000
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
# Control characters and line/paragraph separators are never part of a name or a code.
_CONTROL = frozenset({"Cc", "Zl", "Zp"})
# Invisible formatting characters (bidi overrides U+202E, zero-width U+200B, ...)
# make two different names look identical on screen.
_INVISIBLE = frozenset({"Cf"})


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class InputError(ValueError):
    """Bad input; the message names the field and is shown to the caller as `{"error": ...}`."""


def _reject_constant(token: str):
    raise InputError(f"body is not valid JSON: {token} is not allowed")


def _unencodable_path(document: object, root: str) -> str | None:
    """The path of the first string (key or value) with a lone surrogate, walking without recursion."""
    stack = [(root, document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if not text_is_encodable(node):
                return path
        elif isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}" if path else str(key)
                if not text_is_encodable(key):
                    return (path + "." if path else "") + "<key>"
                stack.append((child, value))
        elif isinstance(node, list):
            stack.extend((f"{path}[{index}]", value) for index, value in enumerate(node))
    return None


def json_parse(raw: bytes | str, *, what: str = "body", prefix: str = "") -> object:
    """Decode JSON text, turning everything the decoder can raise into an InputError.

    Besides syntax errors: integers longer than Python's int-string limit
    (ValueError), nesting deeper than the recursion limit (RecursionError),
    bytes that are not UTF-8, NaN/Infinity, and strings holding lone
    surrogates ("\\ud800"), which no database or hash can store.
    """
    if not raw:
        raise InputError(f"{what} is empty; send a JSON object")
    # Text decoded from UTF-8 holds no surrogates; then only a \\uD800-\\uDFFF escape can make one.
    may_hold_surrogates = not isinstance(raw, bytes) and not text_is_encodable(raw)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{what} is not UTF-8 encoded JSON") from None
    try:
        document = json.loads(raw, parse_constant=_reject_constant)
    except InputError:
        raise
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise InputError(f"{what} is not valid JSON: nested too deeply") from None
    except (ValueError, OverflowError, MemoryError) as exc:
        # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise InputError(f"{what} is not acceptable JSON: {_short(str(exc))}") from None
    if not may_hold_surrogates and not _SURROGATE_ESCAPE.search(raw):
        return document
    bad = _unencodable_path(document, prefix)
    if bad is not None:
        raise InputError(f"{bad or what}: contains unencodable text (a lone surrogate character)")
    return document


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_is_encodable(text: str) -> bool:
    """False for text holding lone surrogates (category Cs): UTF-8, MySQL and hashes all refuse it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_check(
    value: str, field: str, *, max_length: int | None = None, name: bool = False, multiline: bool = False
) -> str:
    """Check one string field; raises InputError naming the field.

    Every string: no lone surrogates. Unless `multiline`: no control
    characters (NUL, newlines, ...). `name=True` (strategy, security, client
    and bond names): no invisible formatting characters either.
    """
    if value.isprintable():
        # No character of categories Cc, Cf, Cs, Zl or Zp (str.isprintable
        # refuses them all): nothing below can fail but the length.
        if max_length is not None and len(value) > max_length:
            raise InputError(f"{field}: at most {max_length} characters")
        return value
    if not text_is_encodable(value):
        raise InputError(f"{field}: contains unencodable text (a lone surrogate character)")
    if max_length is not None and len(value) > max_length:
        raise InputError(f"{field}: at most {max_length} characters")
    for char in value:
        category = unicodedata.category(char)
        if category in _CONTROL and not (multiline and char in "\n\r\t"):
            raise InputError(f"{field}: must not contain control characters (U+{ord(char):04X})")
        if name and category in _INVISIBLE:
            raise InputError(f"{field}: must not contain invisible formatting characters (U+{ord(char):04X})")
    return value


def whole_number_text(text: str, field: str, *, minimum: int = 0, maximum: int = DB_INT_MAX) -> int:
    """A number written in ASCII digits only ('²' and '١' are refused), within [minimum, maximum]."""
    text = text.strip()
    if not _ASCII_DIGITS.fullmatch(text):
        raise InputError(f"{field}: must be a whole number written with the digits 0-9")
    number = int(text)
    if number < minimum:
        raise InputError(f"{field}: must be at least {minimum}")
    if number > maximum:
        raise InputError(f"{field}: must be at most {maximum}")
    return number


def query_int(params, field: str, *, default: int | None = None, minimum: int = 0, maximum: int = DB_INT_MAX):
    """An integer query parameter (`?page=2`); absent or empty gives `default`."""
    text = params.get(field)
    if text is None or text == "":
        return default
    return whole_number_text(text, field, minimum=minimum, maximum=maximum)


def query_page(params, field: str = "page") -> int:
    """`?page=`: 1 to PAGE_MAX, default 1."""
    return query_int(params, field, default=1, minimum=1, maximum=PAGE_MAX)


def query_text(params, field: str, *, max_length: int = 200, name: bool = False) -> str:
    """A text query parameter, checked like a body string field; absent gives ''."""
    return text_check(params.get(field) or "", field, max_length=max_length, name=name)


def query_params_check(params) -> None:
    """Every query parameter, known or not: encodable text without control characters."""
    for key, values in params.lists():
        text_check(key, "query parameter name", max_length=100)
        for value in values:
            text_check(value, key, max_length=2000)
