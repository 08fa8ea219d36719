"""Admin changelists over millions of rows (orders, fills): bounded counts, index-friendly search and filters.

Django's defaults each read the whole table once per page view: the exact
COUNT(*) (twice: filtered and full), `date_hierarchy` (SELECT DISTINCT over a
date truncated per row), an AllValuesFieldListFilter (SELECT DISTINCT) and
`icontains` search (LIKE '%x%' on every row).
"""

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Q
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from positions.codes import CodeError, normalize

from ..filters import code_range_q
from ..pagination import count_bounded
from ..quotes import SOURCE_ADMIN, SOURCE_HTTP, SOURCE_TARGET_COST, SOURCE_XTDATA


class BoundedCountPaginator(Paginator):
    """Counts at most COUNT_LIMIT + 1 rows; past that the changelist says "more than" and pages stop there."""

    count_exact = True

    @cached_property
    def count(self) -> int:
        count, self.count_exact = count_bounded(self.object_list)
        return count


class LargeTableAdminMixin:
    """Related rows of the page are prefetched (`list_prefetch_related`), never joined: with a join
    MariaDB reads the small table first and sorts every order for ORDER BY created_at LIMIT 100."""

    paginator = BoundedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice
    list_prefetch_related: tuple[str, ...] = ()

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(*self.list_prefetch_related)


def search_q(term: str, *, code_field: str, key_field: str | None = None, number_field: str | None = None) -> Q:
    """One search word: a code (600000.SH, 600000.XSHG), the first digits of codes, an order key, a broker id."""
    q = Q(pk__in=[])
    try:
        q |= Q(**{code_field: normalize(term)})
    except CodeError:
        pass
    if term.isascii() and term.isdigit():
        if len(term) <= 6:
            q |= code_range_q(code_field, term)
        if number_field and len(term) <= 18:
            q |= Q(**{number_field: int(term)})
    if key_field:
        q |= Q(**{key_field: term.lower()})
    return q


class PriceSourceFilter(admin.SimpleListFilter):
    """The known quote sources, without a SELECT DISTINCT over every order."""

    title = _("price source")
    parameter_name = "price_source"

    def lookups(self, request, model_admin):
        return [(source, source) for source in (SOURCE_XTDATA, SOURCE_HTTP, SOURCE_ADMIN, SOURCE_TARGET_COST)]

    def queryset(self, request, queryset):
        return queryset.filter(price_source=self.value()) if self.value() else queryset
