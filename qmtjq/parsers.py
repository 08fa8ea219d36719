"""DRF's parser for `request.data`: the same strict decoder as `qmtjq.api.request_json`.

Its own module: `rest_framework.views` reads the parser setting on import, so
the parser must not live in a module that imports the views.
"""

from rest_framework import exceptions
from rest_framework.parsers import BaseParser

from .validation import InputError, json_parse


class JsonBodyParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return json_parse(stream.read() if stream is not None else b"")
        except InputError as exc:
            raise exceptions.ParseError(str(exc))
